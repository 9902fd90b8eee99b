"""What ``runs:/`` and ``models:/`` share: the tracking server's REST API, and a filesystem whose
paths begin with a reference (a run id, a model spec) that resolves to an artifact root.

The tracking server is asked once per reference; the artifact root it names is then opened with
:func:`~artifact_fs.root.open_root`, so files go through that root's own backend (S3 multipart
writes, the proxied client's streaming reads ...). Names listed come back under the reference, so
``ls``/``glob`` results (and ``unstrip_protocol`` of them, which DuckDB re-opens) resolve again.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from fsspec.spec import AbstractFileSystem

from artifact_fs import http as af_http
from artifact_fs import integrity, paths, settings, uris
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.root import ArtifactRoot, RootFileSystem, open_root

CAPABILITIES = Capabilities(
    empty_directories=False,  # depends on the store each reference resolves to; the conservative answer
    atomic_write=False,
    range_read=True,
    delete=True,
    rename=True,
    modified_time=False,
)
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
"""MLflow's answers for an unknown run / model / version / alias (and a malformed id)."""
T = TypeVar("T")


def is_rest_tracking(tracking_uri: str | None) -> bool:
    return bool(tracking_uri) and urlsplit(str(tracking_uri)).scheme in {"http", "https"}


def tracking_json(
    tracking_uri: str,
    method: str,
    endpoint: str,
    *,
    what: str,
    environ: Mapping[str, str],
    policy: TransferPolicy | None = None,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One call to ``<tracking>/api/2.0/mlflow/<endpoint>`` with MLflow's HTTP settings.

    ``FileNotFoundError`` (one line naming ``what``) when the server does not know the entity.
    """
    session = af_http.tracking_session(af_http.HttpSettings.from_environ(environ, policy=policy))
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
    with session, af_http.translating_requests(url, what):
        response = session.request(method, url, params=params, json=body)
    if response.status_code in (400, 404):
        code, message = af_http.error_message(response)
        if code in NOT_FOUND_CODES or response.status_code == 404:
            detail = " ".join(message.split())[:300]
            raise FileNotFoundError(
                f"{what} not found at the tracking server {uris.redact(tracking_uri)}: {detail}"
            )
    af_http.raise_for_status(response, what)
    result: dict[str, Any] = response.json()
    return result


def lookup_options(
    environ: Mapping[str, str],
    policy: TransferPolicy | None,
    overrides: dict[str, Any],
    lookup_names: tuple[str, ...],
) -> dict[str, Any]:
    """The options of a resolving filesystem: ``lookup_names`` (``tracking_uri`` ...), ``environ`` and
    ``policy`` for the lookup; every other option goes, as ``storage_options``, to the store found."""
    result: dict[str, Any] = {} if environ is os.environ else {"environ": dict(environ)}
    if policy is not None:
        result["policy"] = policy
    for name in lookup_names:
        value = overrides.pop(name, None)
        if value:
            result[name] = value
    result["storage_options"] = overrides
    return result


def with_mlflow_client(
    call: Callable[[Any], T], *, what: str, tracking_uri: str | None, registry_uri: str | None = None
) -> T:
    """``call(MlflowClient)`` for a tracking URI that is not a server (sqlite, a directory ...).

    Without MLflow a ``ValueError`` says what to set; an entity MLflow does not know is
    ``FileNotFoundError``.
    """
    try:
        from mlflow.exceptions import MlflowException  # type: ignore[import-not-found]
        from mlflow.tracking import MlflowClient  # type: ignore[import-not-found]
    except ImportError:
        shown = uris.redact(tracking_uri) if tracking_uri else "not set"
        raise ValueError(
            f"cannot resolve {what}: the tracking URI is {shown}, and without MLflow installed "
            "artifact_fs resolves it only through a tracking server; set MLFLOW_TRACKING_URI (or pass "
            "tracking_uri=) to http(s)://<mlflow server>, or install mlflow in this environment"
        ) from None
    try:
        return call(MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in NOT_FOUND_CODES:
            shown = uris.redact(tracking_uri) if tracking_uri else "the default tracking store"
            raise FileNotFoundError(f"{what} not found in the tracking store {shown}") from exc
        raise


class Located(NamedTuple):
    """Where a path lands: names listed there come back as ``<prefix>/<name>``."""

    prefix: str
    root: ArtifactRoot
    relative: str

    @property
    def fs(self) -> RootFileSystem:
        return self.root.fs

    def named(self, entry: Any) -> Any:
        if isinstance(entry, dict):
            return {**entry, "name": join(self.prefix, entry["name"])}
        return join(self.prefix, entry)


def join(prefix: str, name: str) -> str:
    return posixpath.join(prefix, name.strip("/")) if name.strip("/") else prefix


class ResolvedRootsFileSystem(AbstractFileSystem):
    """Paths are ``<reference>/<artifact path>``; each reference resolves once to an artifact root.

    Subclasses say how a path splits (:meth:`locate`), may refuse writes (:meth:`check_writable`)
    and may read from more than one place (:meth:`read_locations`).
    """

    root_marker = ""
    scheme = ""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        policy: TransferPolicy | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environ = os.environ if environ is None else environ
        self.policy = policy
        self.tracking_uri = tracking_uri or settings.MLFLOW_TRACKING_URI.get(self.environ)
        self.backend_options = dict(storage_options or {})  # fsspec keeps its own storage_options
        self._roots: dict[Any, ArtifactRoot | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        if text[: len(cls.scheme) + 1].lower() == f"{cls.scheme}:":
            text = text[len(cls.scheme) + 1 :]
        return text.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        """``<scheme>:///<name>``: the form pandas, pyarrow and DuckDB hand back to fsspec."""
        return f"{self.scheme}:///{name.lstrip('/')}"

    def cached_root(self, key: Any, resolve: Callable[[], ArtifactRoot | None]) -> ArtifactRoot | None:
        """``resolve()`` once per key and filesystem (``invalidate_cache`` forgets them)."""
        with self._lock:
            if key in self._roots:
                return self._roots[key]
        root = resolve()
        with self._lock:
            self._roots[key] = root
        return root

    def open_artifact_root(self, artifact_uri: str, owner: str) -> ArtifactRoot:
        """The artifact root at ``artifact_uri`` (what the tracking server named for ``owner``)."""
        parsed = uris.parse(artifact_uri)
        if parsed.scheme in {"runs", "models"}:
            raise ValueError(f"{owner} has the artifact URI {parsed}; refusing to loop")
        options = dict(self.backend_options)
        if parsed.backend == "mlflow_artifacts" and self.tracking_uri:
            options.setdefault("tracking_uri", self.tracking_uri)
        return open_root(parsed, environ=self.environ, policy=self.policy, **options)

    # -- what subclasses decide ---------------------------------------------------------------------
    def locate(self, path: str) -> Located:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def check_writable(self, located: Located) -> None:
        """Raise ``PermissionError`` where writes are refused (default: everywhere allowed)."""

    def read_locations(self, path: str) -> list[Located]:
        """Where reads of ``path`` look, in order (default: only where writes go)."""
        return [self.locate(path)]

    def _relative(self, relative: str) -> str:
        return paths.validate_path_is_safe(relative) if relative else ""

    def _reading(self, path: str, action: Callable[[Located], T]) -> T:
        """``action`` at the first read location that has ``path``."""
        *earlier, last = self.read_locations(path)
        for located in earlier:
            try:
                return action(located)
            except FileNotFoundError:
                continue
        return action(last)

    def _writing(self, path: str) -> Located:
        located = self.locate(path)
        self.check_writable(located)
        return located

    # -- reads --------------------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The entries of every read location, merged (the first location wins a name)."""
        merged: dict[str, Any] = {}
        missing: FileNotFoundError | None = None
        found = False
        for located in self.read_locations(path):
            try:
                entries = located.fs.ls(located.relative, detail=detail, **kwargs)
            except FileNotFoundError as exc:
                missing = missing or exc
                continue
            found = True
            for entry in entries:
                named = located.named(entry)
                merged.setdefault(named["name"] if isinstance(named, dict) else named, named)
        if not found and missing is not None:
            raise missing
        return list(merged.values())

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        located = self.locate(path)
        if not located.relative:
            return {"name": located.prefix, "size": 0, "type": "directory"}
        return self._reading(path, lambda at: dict(at.named(at.fs.info(at.relative, **kwargs))))

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        def read(at: Located) -> bytes:
            return bytes(at.fs.cat_file(at.relative, start=start, end=end, **kwargs))

        return self._reading(path, read)

    def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        """The resolved root's download, checked against the artifact's record (fsspec's ``get``)."""

        def fetch(at: Located) -> None:
            expected = at.root.recorded_digest(at.relative)  # None behind a server: its client checks
            at.fs.get_file(at.relative, lpath, **kwargs)
            integrity.check_local_file(rpath, lpath, expected)

        self._reading(rpath, fetch)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        """The root's backend opens the file with its own file class (writes land, reads use its reader)."""
        if "r" in mode and "+" not in mode:
            return self._reading(path, lambda at: at.root.open(at.relative, mode, **kwargs))
        located = self._writing(path)
        return located.root.open(located.relative, mode, **kwargs)

    def modified(self, path: str) -> Any:
        return self._reading(path, lambda at: at.fs.modified(at.relative))

    # -- batches of small files (``ArtifactStore`` through ``artifact-fs serve``) -------------------
    def get_batched(self, files: Mapping[str, tuple[str, int | None, Any]]) -> set[str]:
        """The resolved roots' batch downloads (:mod:`.mlflow_artifacts.batch`); the paths delivered."""
        return self._batched("get_batched", files, writing=False)

    def put_batched(self, files: Mapping[str, tuple[str, int | None, Any]]) -> set[str]:
        """The resolved roots' batch uploads (:mod:`.mlflow_artifacts.batch`); the paths delivered."""
        return self._batched("put_batched", files, writing=True)

    def _batched(
        self, method: str, files: Mapping[str, tuple[str, int | None, Any]], *, writing: bool
    ) -> set[str]:
        """Each file's root's backend ``method``, where it has one, with the files landing there.

        A file with several places to read from (a logged model's fallbacks), or one whose place
        cannot be resolved or written, is left to the caller's one-by-one transfer, which reports
        its error."""
        groups: dict[int, tuple[ArtifactRoot, dict[str, str]]] = {}
        for path in files:
            try:
                if writing:
                    located = self._writing(path)
                else:
                    locations = self.read_locations(path)
                    if len(locations) != 1:
                        continue
                    located = locations[0]
            except (OSError, ValueError):
                continue
            root = located.root
            groups.setdefault(id(root), (root, {}))[1][root.backend_path(located.relative)] = path
        delivered: set[str] = set()
        for root, inner in groups.values():
            batched = getattr(root.backend_fs, method, None)
            if batched is not None:
                done = batched({backend: files[outer] for backend, outer in inner.items()})
                delivered |= {inner[backend] for backend in done}
        return delivered

    # -- writes and deletes -------------------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        at = self._writing(path)
        at.fs.pipe_file(at.relative, value, **kwargs)

    def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        at = self._writing(rpath)
        at.fs.put_file(lpath, at.relative, **kwargs)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        target = self._writing(path2)
        source = self.locate(path1)
        if source.root is target.root:
            source.fs.cp_file(source.relative, target.relative, **kwargs)
        else:
            target.fs.pipe_file(target.relative, self.cat_file(path1))

    def rm_file(self, path: str) -> None:
        at = self._writing(path)
        at.fs.rm_file(at.relative)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        for target in path if isinstance(path, list) else [path]:
            at = self._writing(target)
            at.fs.rm(at.relative, recursive=recursive, maxdepth=maxdepth)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        at = self._writing(path)
        at.fs.mkdir(at.relative, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        at = self._writing(path)
        at.fs.makedirs(at.relative, exist_ok=exist_ok)

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget listings below every root; without a path also what each reference resolved to
        (an alias may have moved, a model may have been logged since)."""
        with self._lock:
            roots = [root for root in self._roots.values() if root is not None]
            if path is None:
                self._roots.clear()
        for root in roots:
            root.fs.invalidate_cache()


__all__ = [
    "CAPABILITIES",
    "NOT_FOUND_CODES",
    "Located",
    "ResolvedRootsFileSystem",
    "is_rest_tracking",
    "join",
    "lookup_options",
    "tracking_json",
    "with_mlflow_client",
]


class ResolvedDigests:
    """Digest records of ``runs:/`` and ``models:/`` paths live where the resolved root keeps them."""

    cheap_lookup = False
    checks_gets = True
    """``get_file`` checks whole downloads itself (fsspec users get it too): no second check."""

    @staticmethod
    def _at(fs: Any, path: str) -> tuple[ArtifactRoot, str]:
        located: Located = fs.locate(fs._strip_protocol(path))
        return located.root, located.root.backend_path(located.relative)

    def location(self, path: str) -> str:
        return path  # decided by the root the path resolves to

    def record(self, fs: Any, path: str, digest: integrity.Record) -> None:
        root, inner = self._at(fs, path)
        integrity.digest_store(root.backend).record(root.backend_fs, inner, digest)

    def lookup(self, fs: Any, path: str, info: Mapping[str, Any] | None) -> integrity.Record | None:
        root, inner = self._at(fs, path)
        return integrity.digest_store(root.backend).lookup(root.backend_fs, inner, info)

    def remove(self, fs: Any, path: str) -> None:
        root, inner = self._at(fs, path)
        integrity.forget(root.backend, root.backend_fs, inner)

    def remove_tree(self, fs: Any, path: str) -> None:
        root, inner = self._at(fs, path)
        integrity.forget(root.backend, root.backend_fs, inner, tree=True)


DIGESTS = ResolvedDigests()
