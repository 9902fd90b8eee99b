"""Reads through MLflow's proxied artifact API, on the shape of fsspec's ``HTTPFile``/``HTTPStreamFile``.

A read is ranged: a presigned URL with ``Range`` when the server advertises multipart downloads, else
``Range`` on the proxy, else (a server that ignores ``Range``) one streamed read that serves
sequential reads; the file objects over them are in :mod:`.files`.
Downloads (``get_file``) never list: the GET's answer tells a directory from a file; a large file
comes as concurrent ranges when the server honours ``Range`` (:mod:`.ranged`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from artifact_fs import http as af_http
from artifact_fs import integrity
from artifact_fs.backends.mlflow_artifacts.body_digests import WholeBodyDigest
from artifact_fs.backends.mlflow_artifacts.core import PRESIGNED_URL_REUSE_SECONDS
from artifact_fs.backends.mlflow_artifacts.listing import ArtifactsListing, Entry
from artifact_fs.backends.mlflow_artifacts.ranged import (
    RangedDownload,
    can_continue,
    empty_answer,
    range_size,
)
from artifact_fs.backends.mlflow_artifacts.versions import (
    Resumable,
    VersionPin,
    changed_error,
    iter_body,
    read_between,
    read_between_into,
    resuming,
)


class ArtifactsReads(ArtifactsListing):
    """Ranged and streamed reads, and downloads to local files."""

    # -- presigned downloads ------------------------------------------------------------------------
    def _presigned_download(self, path: str, refresh: bool = False) -> dict[str, Any] | None:
        """``{"url", "headers", "file_size"}`` or None when the server cannot presign (501/404)."""
        now = time.monotonic()
        with self._lock:
            cached = self._presigned.get(path)
        if cached is not None and not refresh and now - cached[0] < PRESIGNED_URL_REUSE_SECONDS:
            return cached[1]
        url = f"{self.service_url}/mlflow-artifacts/presigned/{quote(path)}"
        with af_http.translating_requests(url, path):
            response = self.session.get(url)
        if response.status_code in (404, 501) and not self.presigned_only:
            return None
        if response.status_code >= 400:  # a directory or a missing object, told apart by a listing
            self._raise_for_download(response, path)
        answer = response.json()
        with self._lock:
            self._presigned[path] = (now, answer)
        return dict(answer)

    def _presigned_get(self, path: str, headers: Mapping[str, str]) -> requests.Response | None:
        for refresh in (False, True):
            presigned = self._presigned_download(path, refresh=refresh)
            if presigned is None:
                return None
            url = str(presigned["url"])
            with af_http.translating_requests(url, path):
                response = self.presigned_session.get(
                    url, headers={**(presigned.get("headers") or {}), **headers}, stream=True
                )
            if response.status_code in (400, 403) and not refresh:  # expired URL: ask again once
                response.close()
                continue
            digest = presigned.get("digest")
            if isinstance(digest, str) and "Repr-Digest" not in response.headers:
                response.headers["Repr-Digest"] = digest  # what the server recorded for these bytes
            return response
        return None  # pragma: no cover - the loop always returns

    # -- streams ------------------------------------------------------------------------------------
    def open_stream(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        etag: str | None = None,
        *,
        ranged: bool = False,
    ) -> tuple[requests.Response, int]:
        """A streamed GET of ``path`` from ``start``; returns the response and the offset it starts at.

        The offset is ``start`` when the server honoured ``Range`` and 0 when it ignored it. With
        ``etag`` the read is pinned to that version (``If-Match``): a changed artifact is
        :func:`changed_error`, never bytes of another version. ``ranged`` asks with ``Range`` even
        from 0 (a resumed read: the server hashes only whole 200 bodies, the client checks the whole).
        """
        path = self._checked(path)
        headers = {}
        if start or end is not None or ranged:
            headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        if etag:
            headers["If-Match"] = etag
        response = self._presigned_get(path, headers) if self.multipart_download_enabled() else None
        via_proxy = response is None
        if response is None:
            url = self._artifact_url(path)
            with af_http.translating_requests(url, path):
                response = self.session.get(url, headers=headers, stream=True, timeout=self.transfer_timeout)
        if response.status_code == 416:  # the range starts at or after the end: no bytes
            response.close()
            return empty_answer(response), start
        if response.status_code == 412 and etag:
            response.close()
            raise changed_error(path)
        if response.status_code >= 400:
            self._raise_for_download(response, path)
        if not headers:
            return response, 0
        honoured = response.status_code == 206
        if via_proxy:
            self.proxy_honours_range = honoured
        return response, start if honoured else 0

    def _raise_for_download(self, response: requests.Response, path: str) -> None:
        """MLflow's proxy answers 500 for a missing object on a remote store, 400 for a directory.

        Only a failed download lists (the parent), to name the failure; a good one never does.
        """
        try:
            af_http.raise_for_status(response, path)
        except FileNotFoundError:
            raise
        except OSError as exc:
            entry = self._entry_in_parent(path)
            if entry is None:
                raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r} ({exc})", path) from exc
            if entry["type"] == "directory":
                raise IsADirectoryError(errno.EISDIR, f"{path!r} is a directory, not a file", path) from exc
            raise

    def _refuse_non_file(self, path: str) -> Entry:
        """The entry of ``path`` if it is a file; else FileNotFoundError or IsADirectoryError."""
        entry = self.info(path)
        if entry["type"] == "directory":
            raise IsADirectoryError(errno.EISDIR, f"{path!r} is a directory, not a file", path)
        return entry

    def fetch_range(self, path: str, start: int, end: int, pin: VersionPin | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``path``: one ranged GET, or a streamed skip if ``Range`` is ignored.

        ``pin`` keeps every range of one read on one version (the first answer's ETag, then
        ``If-Match``); a range cut mid-body is fetched again within the policy's retries.
        """
        if end <= start:
            return b""
        data: bytes = self._pinned_read(
            path, start, end, pin, lambda response, offset: read_between(response, offset, start, end, path)
        )
        return data

    def fetch_range_into(self, path: str, start: int, view: memoryview, pin: VersionPin | None = None) -> int:
        """:meth:`fetch_range` of ``len(view)`` bytes written into ``view`` as they arrive; the bytes
        written (fewer only where the artifact ends first)."""
        written: int = self._pinned_read(
            path,
            start,
            start + len(view),
            pin,
            lambda response, offset: read_between_into(response, offset, start, view, path),
        )
        return written

    def _pinned_read(
        self,
        path: str,
        start: int,
        end: int,
        pin: VersionPin | None,
        read: Callable[[requests.Response, int], Any],
    ) -> Any:
        """``read(response, offset)`` of a GET of ``[start, end)``, pinned and resumed as
        :meth:`fetch_range` says."""
        pin = pin if pin is not None else VersionPin()
        for attempt in resuming(self.policy):
            with attempt:
                response, offset = self.open_stream(path, start, end, etag=pin.etag)
                with response:
                    pin.check(response, path)
                    result = read(response, offset)
        return result

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        if start is None and end is None:
            buffer = io.BytesIO()
            progress = self._read_whole(path, buffer)
            if not progress.written and not progress.sized:
                # MLflow's streamed answer for a remote store sends 200 and nothing for a directory.
                self._refuse_non_file(self._checked(path))
            return buffer.getvalue()
        if (start is not None and start < 0) or (end is not None and end < 0) or end is None:
            size = self.size(path)
            start = 0 if start is None else (max(0, size + start) if start < 0 else start)
            end = size if end is None else (max(0, size + end) if end < 0 else end)
        return self.fetch_range(path, start or 0, end)

    # -- downloads ----------------------------------------------------------------------------------
    def get(self, rpath: Any, lpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """fsspec's ``get``: the tree is listed once (one listing per directory), then one GET per file."""
        with self.listing_snapshot():
            super().get(rpath, lpath, recursive=recursive, **kwargs)

    def get_file(
        self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any
    ) -> None:
        """Download to ``lpath``: concurrent pinned ranges (presigned or proxied) for a file larger than
        one range where the server honours ``Range``, else one stream.

        No listing: a directory is known from the caller's listing (``get``'s snapshot) or from the
        server's answer to the GET, and becomes a local directory, as in fsspec's ``get_file``.
        """
        rpath = self._checked(rpath)
        known = self.listed_entry(rpath)
        if known is not None and known["type"] == "directory":
            os.makedirs(lpath, exist_ok=True)
            return
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
        try:
            self._download(rpath, lpath, callback)
        except IsADirectoryError:
            os.makedirs(lpath, exist_ok=True)

    def _download(self, path: str, lpath: str, callback: Any) -> None:
        """The first request asks for the first range (:mod:`.ranged`): a ``206`` of a larger file goes
        on as concurrent pinned ranges; a server that ignores ``Range`` answers the whole file, read as
        one stream. Either way a failure leaves no local file."""
        if not path:
            raise IsADirectoryError(errno.EISDIR, "the artifact root is a directory", path)
        part_size = range_size(self.storage_options, self.multipart_download_chunk_size)
        first: requests.Response | None
        first, _ = self.open_stream(path, 0, part_size)
        if first.status_code == 206 and can_continue(first, part_size):
            self._ranged_download(path, lpath, first, part_size, callback)
            return
        if first.status_code == 206 or (first.raw is None and "Content-Length" not in first.headers):
            # ranges it cannot pin (no strong ETag), or a 416 that does not say the file is empty
            # (S3 refuses any range of an empty object): one whole GET instead
            first.close()
            first = None
        try:
            with open(lpath, "wb") as local:
                progress = self._read_whole(path, local, callback, first)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(lpath)  # neither a partial file nor one for a missing artifact
            raise
        if not progress.written and not progress.sized:
            # MLflow's streamed answer for a remote store sends 200 and nothing for a directory.
            try:
                self._refuse_non_file(path)
            except IsADirectoryError:
                os.remove(lpath)
                raise

    def _ranged_download(
        self, path: str, lpath: str, first: requests.Response, part_size: int, callback: Any
    ) -> None:
        download = RangedDownload(
            path,
            lpath,
            lambda start, end, etag: self.open_stream(path, start, end, etag=etag)[0],
            part_size=part_size,
            workers=self.max_workers,
            policy=self.policy,
            digests=self.digests_enabled,
            callback=callback,
        )
        try:
            download.run(first)
        except integrity.DigestMismatchError as exc:
            self._refuse_if_replaced(path, download.etag, download.header, exc)
            raise

    def _read_whole(
        self, path: str, local: Any, callback: Any = None, first: requests.Response | None = None
    ) -> Resumable:
        """All of ``path`` into ``local``, resumed after cuts within the policy's retries.

        ``first`` is an answer already open (a whole body from a server that ignored ``Range``).

        The bytes are hashed as they are written and checked against the first answer's
        ``Repr-Digest`` (:class:`WholeBodyDigest`): a mismatch is ``DigestMismatchError``.
        """
        progress = Resumable()
        digest = WholeBodyDigest(self.digests_enabled)
        for attempt in resuming(self.policy):
            with attempt:
                answer, first = first, None  # a retry opens its own GET
                self._stream_into(path, local, progress, callback, digest, first=answer)
        try:
            digest.check(path)
        except integrity.DigestMismatchError as exc:
            self._refuse_if_replaced(path, progress.etag, digest.header, exc)
            raise
        return progress

    def _refuse_if_replaced(
        self, path: str, etag: str | None, header: str | None, mismatch: integrity.DigestMismatchError
    ) -> None:
        """A mismatch while the artifact was being replaced is a race, not damage: ``ESTALE``.

        The server's record of a digest and the file it describes change one after the other; if
        either the version (ETag) or the record differs now, the read raced a write (read it again).
        """
        self.invalidate_cache(path)  # a presigned answer cached with an older digest goes too
        try:
            response = self._request("HEAD", self._artifact_url(path), path)
        except OSError:
            return
        if response.headers.get("ETag") != etag or response.headers.get("Repr-Digest") != header:
            raise changed_error(path) from mismatch

    def repr_digest(self, path: str) -> str | None:
        """The digest record the server keeps for ``path`` (its ``Repr-Digest``), with one HEAD."""
        path = self._checked(path)
        response = self._request("HEAD", self._artifact_url(path), path)
        return response.headers.get("Repr-Digest")

    @property
    def digests_enabled(self) -> bool:
        """``ARTIFACT_FS_DIGESTS`` (default on) in the environment this filesystem was built with."""
        environ = self.storage_options.get("environ")
        return integrity.enabled(os.environ if environ is None else environ)

    def _stream_into(
        self,
        path: str,
        local: Any,
        progress: Resumable,
        callback: Any,
        digest: WholeBodyDigest | None = None,
        *,
        first: requests.Response | None = None,
    ) -> None:
        """One GET of the rest of ``path`` into ``local``: resumed where an earlier one was cut.

        A resumed GET asks for the bytes not yet written of the version first answered
        (``Range`` + ``If-Match``); with no ETag to pin, or a server that ignores ``Range``, the
        download starts over, so the file is always one whole version.
        """
        digest = digest or WholeBodyDigest(False)
        resume = progress.started and progress.etag is not None
        if progress.started and not resume:
            progress.restart(local)
            digest.restart()
        # A resumed read asks for a range even from 0: artifact-fs serve withholds the end of a whole
        # body that does not match its digest, and this read checks the whole file itself.
        if first is not None and not progress.started:
            response, offset = first, 0
        else:
            response, offset = self.open_stream(
                path, progress.written if resume else 0, etag=progress.etag, ranged=resume
            )
        with response:
            if not progress.started:
                progress.start(response)
                digest.start(response)
                if callback is not None and progress.sized:
                    callback.set_size(int(response.headers["Content-Length"]))
            elif offset != progress.written:  # Range ignored: the whole body again
                progress.restart(local)
                digest.restart()
            for chunk in iter_body(response, path):
                local.write(chunk)
                digest.update(chunk)
                progress.written += len(chunk)
                if callback is not None:
                    callback.relative_update(len(chunk))
