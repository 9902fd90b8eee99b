"""One artifact root to collect: resolved, measured and deleted without ever leaving it.

Roots come from :func:`artifact_fs.root.open_root`, so every store artifact_fs supports can be collected.
A walk never descends into a symbolic link (it is deleted as a link), every listed path is checked to lie
under the root before it is deleted, and a missing root is success. Object stores delete through the
filesystem's batch call (s3fs: DeleteObjects, 1,000 keys a request; adlfs and gcsfs: batch deletes);
the proxied store deletes a whole root with one server-side recursive DELETE.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec.asyn

from artifact_fs import errors, integrity, uris
from artifact_fs.root import ArtifactRoot, open_root

PROXY_SCHEMES = ("mlflow-artifacts:",)


@dataclass(frozen=True)
class Contents:
    """What a root holds: files (and links) by backend path with sizes, and its directories."""

    files: dict[str, int]
    directories: list[str]

    @property
    def objects(self) -> int:
        return len(self.files)

    @property
    def bytes(self) -> int:
        return sum(self.files.values())


def resolve(artifact_uri: str, *, artifacts_destination: str | None, tracking_uri: str | None) -> str:
    """The URI to delete: a proxied ``mlflow-artifacts:`` root maps into ``--artifacts-destination``.

    Without a destination it stays proxied and is deleted through the tracking server.
    """
    if artifact_uri.startswith(PROXY_SCHEMES) and artifacts_destination:
        path = uris.parse(artifact_uri).path.lstrip("/")
        return artifacts_destination.rstrip("/") + "/" + path
    return artifact_uri


def open_for_gc(uri: str, environ: Mapping[str, str], tracking_uri: str | None) -> ArtifactRoot:
    options: dict[str, Any] = {}
    if uri.startswith(PROXY_SCHEMES) and tracking_uri:
        options["tracking_uri"] = tracking_uri
    return open_root(uri, environ=environ, **options)


def has_directories(root: ArtifactRoot) -> bool:
    """Directories are real (and must be removed) on local, FTP, SFTP, HDFS and behind a proxy."""
    return root.capabilities.empty_directories or root.uri.backend == "mlflow_artifacts"


def batchable(root: ArtifactRoot) -> bool:
    """Object stores: a root is only its files, so the files of many roots can go in one batch call."""
    return not has_directories(root)


def delete_files(fs: Any, paths: list[str]) -> None:
    """Files of several roots on one object store in batch calls: s3fs's DeleteObjects with 1,000 keys a
    request, adlfs's and gcsfs's batch deletes. The fsspec implementation's own ``rm``: artifact_fs's
    S3 subclass also tidies emptied folder entries one parent at a time, which gc does not need (a root
    is confirmed empty by its files). Paths come from :func:`contents`, so each is inside its root."""
    if not paths:
        return
    with errors.translating(paths[0]), contextlib.suppress(FileNotFoundError):
        implementation(fs, "rm")(sorted(paths))
    fs.invalidate_cache()


def implementation(fs: Any, method: str) -> Callable[..., Any]:
    """The fsspec implementation's ``method`` bound to ``fs``, below artifact_fs's subclass (which hides
    temporary uploads and tidies folders); an async filesystem's coroutine (``_ls``) runs on its loop."""
    for klass in type(fs).__mro__:
        if klass.__module__.startswith("artifact_fs"):
            continue
        coroutine = vars(klass).get(f"_{method}")
        if coroutine is not None and inspect.iscoroutinefunction(coroutine):
            return functools.partial(fsspec.asyn.sync, fs.loop, coroutine, fs)
        if method in vars(klass):
            return functools.partial(vars(klass)[method], fs)
    return getattr(fs, method)  # type: ignore[no-any-return]


def inside(root: ArtifactRoot, path: str) -> bool:
    return root.relative(path) not in (None, "") or same(path, root.path)


def same(path: str, root_path: str) -> bool:
    return path.rstrip("/").lstrip("/") == root_path.rstrip("/").lstrip("/")


def contents(root: ArtifactRoot) -> Contents:
    """Files and directories under the root; links are files (never followed); missing is empty."""
    fs = root.backend_fs
    files: dict[str, int] = {}
    directories: list[str] = []
    with errors.translating(root.path), contextlib.suppress(FileNotFoundError):
        if root.capabilities.empty_directories:
            for entry in walk(fs, root.path):
                if entry["type"] == "directory" and not is_link(entry):
                    directories.append(entry["name"])
                else:
                    files[entry["name"]] = int(entry.get("size") or 0)
        else:
            found = fs.find(root.path, detail=True, withdirs=False)
            files = {name: int(info.get("size") or 0) for name, info in found.items()}
    # A file root lists itself; anything else outside the root is never touched.
    files = {name: size for name, size in files.items() if inside(root, name) and not same(name, root.path)}
    directories = [name for name in directories if inside(root, name) and not same(name, root.path)]
    return Contents(files, directories)


def is_link(entry: Mapping[str, Any]) -> bool:
    return bool(entry.get("islink")) or entry.get("type") == "link"


def walk(fs: Any, path: str) -> Iterator[dict[str, Any]]:
    for entry in fs.ls(path, detail=True):
        if same(entry["name"], path):
            continue  # a file lists itself
        yield entry
        if entry["type"] == "directory" and not is_link(entry):
            yield from walk(fs, entry["name"])


def delete(root: ArtifactRoot, found: Contents, *, run_directory_uri: str | None = None) -> None:
    """Delete what ``contents`` found, then the root and (if emptied) ``run_directory_uri``, its parent.

    ``FileNotFoundError`` anywhere is success: another collector or a person got there first.
    """
    fs = root.backend_fs
    with errors.translating(root.path):
        if root.uri.backend == "mlflow_artifacts":
            _delete_proxied(root, run_directory_uri is not None)
            return
        if found.files:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(sorted(found.files))  # one batch call on object stores
        if root.capabilities.empty_directories:
            # Deepest first; what is left is directories and hidden uploads in progress.
            with contextlib.suppress(FileNotFoundError):
                if fs.exists(root.path):
                    fs.rm(root.path, recursive=True)
        integrity.forget(root.backend, fs, root.path, tree=True)  # records kept apart from the root
        if root.capabilities.empty_directories and run_directory_uri is not None:
            # A root of its own: the root's filesystem may refuse paths outside the root.
            parent = open_root(run_directory_uri, environ=root.environ, policy=root.policy)
            with contextlib.suppress(FileNotFoundError, OSError):
                parent.backend_fs.rmdir(parent.path)  # only if empty: never another thing's files
        fs.invalidate_cache(root.path)


def _delete_proxied(root: ArtifactRoot, remove_run_directory: bool) -> None:
    """One recursive DELETE; of the ``<run_id>/`` parent when the root is all it holds."""
    fs = root.backend_fs
    target = root.path
    if remove_run_directory:
        parent = posixpath.dirname(root.path.rstrip("/"))
        with contextlib.suppress(FileNotFoundError):
            siblings = [entry.rstrip("/") for entry in fs.ls(parent, detail=False)]
            if siblings and all(same(entry, root.path) for entry in siblings):
                target = parent
    with contextlib.suppress(FileNotFoundError):
        # Only what the listing shows: MLflow's Azure and GCS repositories answer a DELETE of a
        # missing path with a 500 that its client retries for minutes (mlflow#15461).
        if fs.exists(target) or fs.isdir(target):
            fs.rm(target, recursive=True)
    fs.invalidate_cache(root.path)


def run_directory_of(uri: str, resource_id: str) -> str | None:
    """``<location>/<id>`` for a root ``<location>/<id>/artifacts``: that directory is the resource's."""
    parent, _, name = uri.rstrip("/").rpartition("/")
    return parent if name == "artifacts" and parent.rpartition("/")[2] == resource_id else None
