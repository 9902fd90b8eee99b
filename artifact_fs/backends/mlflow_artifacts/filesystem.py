"""An fsspec filesystem over MLflow's proxied artifact REST API (``/api/2.0/mlflow-artifacts/...``).

Paths are artifact paths relative to the server's artifact root (``0/<run>/artifacts/model.pkl``).
Reads are ranged: a presigned URL with ``Range`` when the server advertises multipart downloads,
else ``Range`` on the proxy, else (a server that ignores ``Range``) one streamed read that serves
sequential reads. Writes are spooled to a temporary file and sent as one streamed PUT, or as a
presigned multipart upload above ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`` when enabled.
"""

from __future__ import annotations

import errno
import io
import logging
import mimetypes
import os
import posixpath
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any
from urllib.parse import quote

import requests
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from artifact_fs import errors, paths, settings
from artifact_fs import http as af_http
from artifact_fs.backends.mlflow_artifacts import multipart
from artifact_fs.backends.mlflow_artifacts.resolve import artifact_path_of, deployment_root, service_url

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 256 * settings.KIB
"""Read-ahead of random-access reads: small, so a Parquet column read fetches little beyond it."""
STREAM_CHUNK = settings.MIB
SPOOL_IN_MEMORY = 8 * settings.MIB
PRESIGNED_URL_REUSE_SECONDS = 60.0
"""Re-ask for a presigned URL after this long (MLflow's default TTL is 300 s)."""
_TEXT_NAMES = {"MLmodel", "MLproject"}
_TEXT_EXTENSIONS = {".txt", ".log", ".err", ".cfg", ".conf", ".cnf", ".cf", ".ini", ".properties",
                    ".prop", ".hocon", ".toml", ".yaml", ".yml", ".xml", ".json", ".sql", ".py", ".md",
                    ".csv", ".tsv", ".js", ".html"}  # fmt: skip


def guess_content_type(path: str) -> str:
    """MLflow's ``_guess_mime_type``: text for its text names/extensions, else ``mimetypes``."""
    name = posixpath.basename(path)
    if name in _TEXT_NAMES or posixpath.splitext(name)[1].lower() in _TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Body(io.RawIOBase):
    """``length`` bytes of ``source`` from its current position, with a length requests can see.

    ``__len__`` makes requests send ``Content-Length`` (never chunked); ``tell``/``seek`` let urllib3
    rewind the body when it retries.
    """

    def __init__(self, source: IO[bytes], length: int) -> None:
        super().__init__()
        self.source, self.start, self.length, self.position = source, source.tell(), length, 0

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, min(self.length, base + offset))
        self.source.seek(self.start + self.position)
        return self.position

    def read(self, size: int = -1) -> bytes:
        remaining = self.length - self.position
        size = remaining if size is None or size < 0 else min(size, remaining)
        data = self.source.read(size) if size else b""
        self.position += len(data)
        return data


class MlflowArtifactsFileSystem(AbstractFileSystem):
    """Artifacts behind an MLflow tracking server (``mlflow server --serve-artifacts``) or artifact_fs's.

    Parameters
    ----------
    service_url:
        ``http(s)://host[:port][/prefix]/api/2.0``; derived from ``tracking_uri`` /
        ``MLFLOW_TRACKING_URI`` (and ``authority``) when not given.
    tracking_uri:
        The MLflow tracking URI that ``mlflow-artifacts:`` paths resolve against.
    authority:
        ``host:port`` of a ``mlflow-artifacts://host:port/...`` URI (the scheme still comes from
        the tracking URI, as in MLflow).
    environ:
        Where MLflow's variables are read (default ``os.environ``).
    http_options:
        Overrides of :class:`artifact_fs.http.HttpSettings` (``timeout``, ``max_retries``, ...).
    """

    protocol = ("mlflow-artifacts",)
    root_marker = ""

    def __init__(
        self,
        service_url: str | None = None,
        *,
        tracking_uri: str | None = None,
        authority: str | None = None,
        environ: Mapping[str, str] | None = None,
        enable_multipart_upload: bool | None = None,
        enable_multipart_download: bool | None = None,
        multipart_upload_minimum_size: int | None = None,
        multipart_upload_chunk_size: int | None = None,
        multipart_download_chunk_size: int | None = None,
        max_workers: int = 4,
        block_size: int | None = None,
        http_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        env = os.environ if environ is None else environ
        if service_url is None:
            source = f"mlflow-artifacts://{authority}/" if authority else None
            service_url = _service_url_for(source, tracking_uri, env)
        self.service_url = service_url.rstrip("/")
        self.http_settings = af_http.HttpSettings.from_environ(env, **dict(http_options or {}))
        self.session = af_http.tracking_session(self.http_settings)
        self.presigned_session = af_http.presigned_session(self.http_settings, pool_maxsize=max_workers)
        self.enable_multipart_upload = _pick_override(
            enable_multipart_upload, settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD, env
        )
        self.enable_multipart_download = _pick_override(
            enable_multipart_download, settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD, env
        )
        self.multipart_upload_minimum_size = settings.pick(
            multipart_upload_minimum_size, settings.MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE, env
        )
        self.multipart_upload_chunk_size = settings.pick(
            multipart_upload_chunk_size, settings.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE, env
        )
        self.multipart_download_chunk_size = settings.pick(
            multipart_download_chunk_size, settings.MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE, env
        )
        self.max_workers = max_workers
        self.blocksize = block_size or DEFAULT_BLOCK_SIZE
        self._server_info: dict[str, Any] | None = None
        self._presigned: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.proxy_honours_range: bool | None = None
        """Learned from the first ranged proxy GET: MLflow's S3-destination route ignores ``Range``."""

    # -- paths and URLs -----------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        return artifact_path_of(str(path))

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        lowered = path.lower()
        if lowered.startswith(("http://", "https://")):
            return {"service_url": service_url(path)}
        if lowered.startswith("mlflow-artifacts://"):
            authority = path[len("mlflow-artifacts://") :].split("/", 1)[0]
            if authority:
                return {"authority": authority}
        return {}

    def unstrip_protocol(self, name: str) -> str:
        return f"{self.service_url}/mlflow-artifacts/artifacts/{name}".rstrip("/")

    def _checked(self, path: str) -> str:
        path = self._strip_protocol(path)
        if path:
            paths.validate_path_is_safe(path)
        return path

    def _artifact_url(self, path: str) -> str:
        return f"{self.service_url}/mlflow-artifacts/artifacts/{quote(path)}"

    def _request(self, method: str, url: str, path: str, **kwargs: Any) -> requests.Response:
        with af_http.translating_requests(url, path):
            response = self.session.request(method, url, **kwargs)
        af_http.raise_for_status(response, path)
        return response

    # -- server capabilities ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """``/api/3.0/mlflow/server-info``, cached; a transient failure is not cached (MLflow's rule)."""
        if self._server_info is not None:
            return self._server_info
        url = f"{deployment_root(self.service_url)}/api/3.0/mlflow/server-info"
        try:
            response = self.session.get(url)
        except requests.RequestException as exc:
            logger.debug("server-info at %s failed: %s", url, exc)
            return {}
        if response.status_code == 200:
            try:
                info = response.json()
            except ValueError:
                info = {}
            self._server_info = info if isinstance(info, dict) else {}
        elif response.status_code in (404, 405):  # an older server: definitively no advertisement
            self._server_info = {}
        else:
            return {}
        return self._server_info

    @property
    def presigned_only(self) -> bool:
        return bool(self.server_info().get("artifacts_presigned_only", False))

    def multipart_upload_enabled(self) -> bool:
        """The client variable when set, else what the server advertises."""
        if self.enable_multipart_upload is not None:
            return self.enable_multipart_upload
        return bool(self.server_info().get("multipart_uploads_enabled", False))

    def multipart_download_enabled(self) -> bool:
        if self.presigned_only:
            return True
        if self.enable_multipart_download is not None:
            return self.enable_multipart_download
        return bool(self.server_info().get("multipart_downloads_enabled", False))

    # -- listing ------------------------------------------------------------------------------------
    def _list(self, path: str) -> list[dict[str, Any]]:
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
            entries.append(
                {
                    "name": full,
                    "size": 0 if is_dir else int(item.get("file_size") or 0),
                    "type": "directory" if is_dir else "file",
                }
            )
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

    def _entry_in_parent(self, path: str) -> dict[str, Any] | None:
        parent = posixpath.dirname(path)
        for entry in self._list(parent):
            if entry["name"] == path:
                return entry
        return None

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._checked(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        entry = self._entry_in_parent(path)
        if entry is None or (entry["type"] == "directory" and not self._has_files(path)):
            # Object stores may list an emptied prefix for a while (SeaweedFS does for ~1 min);
            # without files under it, it is not a directory.
            raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r}", path)
        return entry

    def modified(self, path: str) -> Any:
        raise NotImplementedError("MLflow's artifact API does not report modification times")

    # -- reads --------------------------------------------------------------------------------------
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
            return response
        return None  # pragma: no cover - the loop always returns

    def open_stream(self, path: str, start: int = 0, end: int | None = None) -> tuple[requests.Response, int]:
        """A streamed GET of ``path`` from ``start``; returns the response and the offset it starts at.

        The offset is ``start`` when the server honoured ``Range`` and 0 when it ignored it.
        """
        path = self._checked(path)
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        response = self._presigned_get(path, headers) if self.multipart_download_enabled() else None
        via_proxy = response is None
        if response is None:
            url = self._artifact_url(path)
            with af_http.translating_requests(url, path):
                response = self.session.get(url, headers=headers, stream=True)
        if response.status_code == 416:  # the range starts at or after the end: no bytes
            response.close()
            return _empty_response(), start
        if response.status_code >= 400:
            self._raise_for_download(response, path)
        if not headers:
            return response, 0
        honoured = response.status_code == 206
        if via_proxy:
            self.proxy_honours_range = honoured
        return response, start if honoured else 0

    def _raise_for_download(self, response: requests.Response, path: str) -> None:
        """MLflow's proxy answers 500 for a missing object on a remote store, 400 for a directory."""
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

    def _refuse_non_file(self, path: str) -> dict[str, Any]:
        """The entry of ``path`` if it is a file; else FileNotFoundError or IsADirectoryError."""
        entry = self.info(path)
        if entry["type"] == "directory":
            raise IsADirectoryError(errno.EISDIR, f"{path!r} is a directory, not a file", path)
        return entry

    def fetch_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``path``: one ranged GET, or a streamed skip if ``Range`` is ignored."""
        if end <= start:
            return b""
        response, offset = self.open_stream(path, start, end)
        with response:
            return _read_between(response, offset, start, end)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        if start is None and end is None:
            response, _ = self.open_stream(path)
            with response:
                content = response.content or b""
            if not content and "Content-Length" not in response.headers:
                # MLflow's streamed answer for a remote store sends 200 and nothing for a directory.
                self._refuse_non_file(self._checked(path))
            return content
        if (start is not None and start < 0) or (end is not None and end < 0) or end is None:
            size = self.size(path)
            start = 0 if start is None else (max(0, size + start) if start < 0 else start)
            end = size if end is None else (max(0, size + end) if end < 0 else end)
        return self.fetch_range(path, start or 0, end)

    def get_file(
        self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any
    ) -> None:
        """Download to ``lpath``: parallel presigned ranges for big files when enabled, else one stream."""
        rpath = self._checked(rpath)
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
        if self.multipart_download_enabled():
            presigned = self._presigned_download(rpath)
            size = presigned.get("file_size") if presigned else None
            if size is not None and int(size) > self.multipart_download_chunk_size:
                self._parallel_download(rpath, lpath, int(size), callback)
                return
        response, _ = self.open_stream(rpath)
        with response, open(lpath, "wb") as local:
            if callback is not None and response.headers.get("Content-Length"):
                callback.set_size(int(response.headers["Content-Length"]))
            for chunk in response.iter_content(STREAM_CHUNK):
                local.write(chunk)
                if callback is not None:
                    callback.relative_update(len(chunk))

    def _parallel_download(self, path: str, lpath: str, size: int, callback: Any) -> None:
        chunk = self.multipart_download_chunk_size
        if callback is not None:
            callback.set_size(size)
        with open(lpath, "wb") as local:
            local.truncate(size)
        try:
            descriptor = os.open(lpath, os.O_WRONLY)
            try:

                def fetch(offset: int) -> None:
                    data = self.fetch_range(path, offset, min(size, offset + chunk))
                    os.pwrite(descriptor, data, offset)
                    if callback is not None:
                        callback.relative_update(len(data))

                with ThreadPoolExecutor(self.max_workers, thread_name_prefix="mlflow-download") as pool:
                    list(pool.map(fetch, range(0, size, chunk)))
            finally:
                os.close(descriptor)
        except BaseException:
            os.remove(lpath)
            raise

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> MlflowArtifactFile:
        if mode not in {"rb", "wb"}:
            raise ValueError(f"mode {mode!r} is not supported by MLflow's artifact API; use 'rb' or 'wb'")
        path = self._checked(path)
        if mode == "rb" and "size" not in kwargs:
            kwargs["size"] = self._refuse_non_file(path)["size"]
        return MlflowArtifactFile(
            self,
            path,
            mode,
            block_size=block_size or self.blocksize,
            cache_type=kwargs.pop("cache_type", "readahead"),
            cache_options=cache_options,
            **kwargs,
        )

    # -- writes -------------------------------------------------------------------------------------
    def upload(self, path: str, source: IO[bytes], size: int, callback: Any = None) -> None:
        """Upload ``size`` bytes from ``source`` (positioned at 0): multipart when due, else one PUT."""
        path = self._checked(path)
        if not posixpath.basename(path):
            raise ValueError(f"Artifact path {path!r} must include a file name")
        directory = posixpath.dirname(path)
        presigned_only = self.presigned_only
        wanted = presigned_only or (
            self.multipart_upload_enabled() and size >= self.multipart_upload_minimum_size
        )
        if wanted and directory:
            upload = multipart.MultipartUpload(
                self.service_url,
                self.session,
                self.presigned_session,
                path,
                self.multipart_upload_chunk_size,
                self.max_workers,
            )
            on_part = callback.relative_update if callback is not None else None
            try:
                upload.run(source, size, on_part)
                return
            except errors.MultipartUnsupportedError:
                if presigned_only:
                    raise
                source.seek(0)
        elif presigned_only:
            raise PermissionError(
                f"the server at {self.service_url} is presigned-only and cannot take {path!r}: "
                "MLflow's multipart routes need the file inside a directory"
            )
        url = self._artifact_url(path)
        body: Any = _Body(source, size) if size else b""
        self._request("PUT", url, path, data=body, headers={"Content-Type": guess_content_type(path)})
        if callback is not None:
            callback.relative_update(size)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """``mode="create"`` refuses an existing file; checked first, so not atomic (MLflow has no
        conditional PUT)."""
        if mode == "create" and self.exists(path):
            raise FileExistsError(errno.EEXIST, f"{self._strip_protocol(path)!r} already exists", path)
        self.upload(path, io.BytesIO(value), len(value))

    def put_file(
        self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        if os.path.isdir(lpath):
            return  # object semantics: directories exist through their files
        size = os.path.getsize(lpath)
        if callback is not None:
            callback.set_size(size)
        with open(lpath, "rb") as source:
            self.upload(rpath, source, size, callback)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """No server-side copy in MLflow's API: stream through a ranged reader into the upload."""
        if self.isdir(path1):
            return  # fsspec's copy() passes directories too; they exist through their files
        with self.open(path1, "rb") as source:
            self.upload(path2, source, source.size)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self._checked(path)  # directories exist only through the files in them

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self._checked(path)

    def rmdir(self, path: str) -> None:
        self._checked(path)

    # -- deletes ------------------------------------------------------------------------------------
    def rm_file(self, path: str) -> None:
        """MLflow's DELETE of a missing path succeeds silently; fsspec's contract is FileNotFoundError."""
        path = self._checked(path)
        if path and not self.exists(path):
            raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r}", path)
        self._delete(path)

    def _delete(self, path: str) -> None:
        url = self._artifact_url(path) if path else f"{self.service_url}/mlflow-artifacts/artifacts/"
        self._request("DELETE", url, path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Files one DELETE each; a directory (with ``recursive``) one server-side recursive DELETE."""
        targets = path if isinstance(path, list) else [path]
        for target in targets:
            name = self._checked(target)
            if self.isdir(name):
                if not recursive:
                    raise IsADirectoryError(f"{name!r} is a directory; pass recursive=True to delete it")
                if maxdepth is not None:
                    super().rm(name, recursive=True, maxdepth=maxdepth)
                    continue
            elif not self.exists(name):
                raise FileNotFoundError(errno.ENOENT, f"no artifact at {name!r}", name)
            self._delete(name)

    def invalidate_cache(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._presigned.clear()
            else:
                self._presigned.pop(self._strip_protocol(path), None)


def _read_between(response: requests.Response, offset: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` from a stream that begins at ``offset``; stops reading at ``end``."""
    if response.raw is None:
        return response.content[start - offset : end - offset] if response.content else b""
    out = bytearray()
    position = offset
    for chunk in response.iter_content(STREAM_CHUNK):
        chunk_end = position + len(chunk)
        if chunk_end > start:
            out += chunk[max(0, start - position) : end - position]
        position = chunk_end
        if position >= end:
            break
    return bytes(out)


def _empty_response() -> requests.Response:
    empty = requests.Response()
    empty.status_code, empty._content, empty._content_consumed = 200, b"", True  # type: ignore[attr-defined]
    return empty


def _pick_override(
    explicit: bool | None, setting: settings.Setting[bool], environ: Mapping[str, str]
) -> bool | None:
    """An explicit value, else the variable *if set* (MLflow's client override), else None."""
    if explicit is not None:
        return explicit
    return setting.get(environ) if setting.is_set(environ) else None


def _service_url_for(uri: str | None, tracking_uri: str | None, environ: Mapping[str, str]) -> str:
    return service_url(uri, tracking_uri, environ)


class MlflowArtifactFile(AbstractBufferedFile):
    """Ranged reads (with a streamed fallback) and spooled, streamed writes."""

    fs: MlflowArtifactsFileSystem

    def __init__(self, fs: MlflowArtifactsFileSystem, path: str, mode: str = "rb", **kwargs: Any) -> None:
        self._stream: requests.Response | None = None
        self._stream_iter: Any = None
        self._stream_position = 0
        self._pending = b""
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        super().__init__(fs, path, mode, **kwargs)

    # reads
    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if end <= start:
            return b""
        if self.fs.proxy_honours_range is False and not self.fs.multipart_download_enabled():
            return self._read_sequential(start, end)
        response, offset = self.fs.open_stream(self.path, start, end)
        if offset == start:
            with response:
                return _read_between(response, offset, start, end)
        # The server ignored Range: keep this stream for the reads that follow.
        self._replace_stream(response, offset)
        return self._read_sequential(start, end)

    def _replace_stream(self, response: requests.Response | None, position: int = 0) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = response
        self._stream_iter = response.iter_content(STREAM_CHUNK) if response is not None else None
        self._stream_position = position
        self._pending = b""

    def _read_sequential(self, start: int, end: int) -> bytes:
        if self._stream is None or self._stream_position > start:
            response, offset = self.fs.open_stream(self.path)
            self._replace_stream(response, offset)
        out = bytearray()
        while self._stream_position < end:
            chunk = self._pending or next(self._stream_iter, b"")
            self._pending = b""
            if not chunk:
                break
            chunk_start = self._stream_position
            chunk_end = chunk_start + len(chunk)
            if chunk_end > start:
                out += chunk[max(0, start - chunk_start) : end - chunk_start]
            if chunk_end > end:  # keep the tail for the next read
                self._pending = chunk[end - chunk_start :]
                self._stream_position = end
                break
            self._stream_position = chunk_end
        return bytes(out)

    # writes
    def _initiate_upload(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed in _upload_chunk/discard

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._spool is None:
            self._initiate_upload()
        assert self._spool is not None
        self._spool.write(self.buffer.getvalue())
        if final:
            size = self._spool.tell()
            self._spool.seek(0)
            try:
                self.fs.upload(self.path, self._spool, size)
            finally:
                self._spool.close()
                self._spool = None
        return True

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self.buffer = io.BytesIO()

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        """A write that raised inside ``with`` is discarded, so no partial artifact appears."""
        if exc_type is not None and self.mode == "wb" and not getattr(self, "closed", False):
            self.discard()
            self.closed = True
            return
        self.close()

    def close(self) -> None:
        if self.mode == "rb":
            self._replace_stream(None)
        super().close()
