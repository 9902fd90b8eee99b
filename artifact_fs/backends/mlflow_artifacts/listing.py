"""Listing through MLflow's ``GET /mlflow-artifacts/artifacts?path=``: ``ls``, ``info``, ``find``.

MLflow's API lists one directory level and has no stat, so ``info`` reads the parent's listing and a
directory exists only through the files under it. A tree operation (``find``, and ``get``/``copy``
in the other modules) runs inside :meth:`ArtifactsListing.listing_snapshot`: each directory is
listed once, and the ``isdir``/``info`` questions fsspec asks about paths it has just listed are
answered from those listings instead of one request per file.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from artifact_fs import errors, paths
from artifact_fs.backends.mlflow_artifacts.core import ArtifactsClient

Entry = dict[str, Any]


class ArtifactsListing(ArtifactsClient):
    """Listing and metadata of the proxied artifact API."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot = threading.local()

    # -- one listing per directory within a tree operation --------------------------------------------
    @contextlib.contextmanager
    def listing_snapshot(self) -> Iterator[None]:
        """Within the block (this thread), each directory is listed at most once; writes forget it."""
        outer = getattr(self._snapshot, "listings", None)
        if outer is None:
            self._snapshot.listings = {}
        try:
            yield
        finally:
            if outer is None:
                self._snapshot.listings = None

    def _snapshot_listings(self) -> dict[str, list[Entry]] | None:
        listings: dict[str, list[Entry]] | None = getattr(self._snapshot, "listings", None)
        return listings

    def forget_listings(self, path: str | None = None) -> None:
        """Drop the snapshot's listings of ``path`` and its ancestors (all when ``path`` is None)."""
        listings = self._snapshot_listings()
        if listings is None:
            return
        if path is None:
            listings.clear()
            return
        while True:
            listings.pop(path, None)
            if not path:
                return
            path = posixpath.dirname(path)

    def listed_entry(self, path: str) -> Entry | None:
        """The entry of ``path`` in a listing of its parent already made in this snapshot, if any."""
        listings = self._snapshot_listings()
        if listings is None:
            return None
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        for entry in listings.get(posixpath.dirname(path)) or ():
            if entry["name"] == path:
                return dict(entry)
        return None

    # -- listing ------------------------------------------------------------------------------------
    def _list(self, path: str) -> list[Entry]:
        listings = self._snapshot_listings()
        if listings is not None and path in listings:
            return [dict(entry) for entry in listings[path]]
        entries = self._fetch_listing(path)
        if listings is not None:
            listings[path] = [dict(entry) for entry in entries]
        return entries

    def _fetch_listing(self, path: str) -> list[Entry]:
        url = f"{self.service_url}/mlflow-artifacts/artifacts"
        response = self._request("GET", url, path, params={"path": path})
        files = (response.json() or {}).get("files") or []
        entries = []
        for item in files:
            name = str(item.get("path", ""))
            try:
                safe = paths.validate_path_is_safe(name)
            except errors.InvalidArtifactPathError as exc:
                raise errors.InvalidArtifactPathError(
                    name, f"the server at {self.service_url} listed an unsafe artifact name ({exc.reason})"
                ) from exc
            full = posixpath.join(path, safe) if path else safe
            is_dir = bool(item.get("is_dir", False))
            entry: dict[str, Any] = {
                "name": full,
                "size": 0 if is_dir else int(item.get("file_size") or 0),
                "type": "directory" if is_dir else "file",
            }
            if not is_dir and isinstance(item.get("digest"), str):
                entry["digest"] = item["digest"]  # artifact-fs serve's extra field (integrity.md)
            entries.append(entry)
        return sorted(entries, key=lambda entry: entry["name"])

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._checked(path)
        entries = self._list(path)
        listed_as_itself = (
            path
            and len(entries) == 1
            and entries[0]["type"] == "file"
            and entries[0]["name"] == posixpath.join(path, posixpath.basename(path))
        )
        if listed_as_itself:  # some stores list a file as itself (MLflow's parent check)
            own = self._entry_in_parent(path)
            if own is not None and own["type"] == "file":
                entries = [own]
        # Hide directories with no files under them: an emptied prefix SeaweedFS lists for a while, a
        # directory MLflow's local store leaves after a delete. One listing per directory entry.
        entries = [e for e in entries if e["type"] == "file" or self._has_files(e["name"])]
        if not entries and path:
            own = self._entry_in_parent(path)
            if own is None or own["type"] == "directory":  # a directory exists through its files
                raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r}", path)
            entries = [own]
        return entries if detail else [entry["name"] for entry in entries]

    def _has_files(self, directory: str) -> bool:
        """True if a file exists at any depth under ``directory`` (emptied prefixes can nest)."""
        entries = self._list(directory)
        if any(entry["type"] == "file" for entry in entries):
            return True
        return any(self._has_files(entry["name"]) for entry in entries)

    def _entry_in_parent(self, path: str) -> Entry | None:
        parent = posixpath.dirname(path)
        for entry in self._list(parent):
            if entry["name"] == path:
                return entry
        return None

    def info(self, path: str, **kwargs: Any) -> Entry:
        path = self._checked(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        entry = self._entry_in_parent(path)
        if entry is None or (entry["type"] == "directory" and not self._has_files(path)):
            # Object stores may list an emptied prefix for a while (SeaweedFS does for ~1 min);
            # without files under it, it is not a directory.
            raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r}", path)
        return entry

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """fsspec's ``find`` with one listing per directory (its ``isdir``/``info`` reuse the walk's)."""
        with self.listing_snapshot():
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)

    def modified(self, path: str) -> datetime:
        """The file's ``Last-Modified`` if the server sends one, else the time of asking.

        MLflow's listing has no times, and DuckDB asks for one before every read of a registered
        filesystem; "now" means a cache keyed on it never serves an older copy.
        """
        path = self._checked(path)
        response = self._request("HEAD", self._artifact_url(path), path)
        stamp = response.headers.get("Last-Modified")
        if stamp:
            with contextlib.suppress(TypeError, ValueError):
                return parsedate_to_datetime(stamp).astimezone(UTC)
        return datetime.now(UTC)
