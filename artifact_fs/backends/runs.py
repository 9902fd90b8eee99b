"""``runs:/<run_id>/<path>``: a run's artifacts, wherever the run's ``artifact_uri`` points.

The run is looked up once through the tracking server's REST API (``GET /api/2.0/mlflow/runs/get``)
when the tracking URI is http(s); for any other tracking URI MLflow's own client does it if MLflow is
importable, else a clear error says what to set. The run's artifact root is then served by the
backend its scheme names (S3, proxied ``mlflow-artifacts``, local ...) as an
:class:`~artifact_fs.root.ArtifactRoot`, so ``runs:/<id>/model/MLmodel`` reads
``<artifact_uri>/model/MLmodel``. Files are opened through that backend's own file classes, so
writes (``df.to_parquet("runs:///<id>/x.parquet")``) land and reads use the backend's reader.

Not done: MLflow 3.x also lists a logged model's artifacts under ``runs:/<id>/<model name>``
(``search_logged_models``); artifact_fs shows the run's own artifacts only.
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
from collections.abc import Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

from fsspec.spec import AbstractFileSystem

from artifact_fs import http as af_http
from artifact_fs import paths, settings, uris
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.root import ArtifactRoot, RootFileSystem, open_root

CAPABILITIES = Capabilities(
    empty_directories=False,  # depends on the run's store; the conservative answer
    atomic_write=False,
    range_read=True,
    delete=True,
    rename=True,
    modified_time=False,
)
_RUNS_PREFIX = re.compile(r"^runs:/*", re.IGNORECASE)


class RunsOptions(TypedDict, total=False):
    tracking_uri: str
    environ: Mapping[str, str]
    policy: TransferPolicy
    storage_options: dict[str, Any]


def artifact_uri_of_run(
    run_id: str, tracking_uri: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The run's ``artifact_uri``; ``FileNotFoundError`` for a run the tracking store does not know."""
    env = os.environ if environ is None else environ
    tracking = tracking_uri or settings.MLFLOW_TRACKING_URI.get(env)
    if tracking and urlsplit(tracking).scheme in {"http", "https"}:
        return _artifact_uri_over_rest(run_id, tracking, env)
    try:
        from mlflow.exceptions import MlflowException  # type: ignore[import-not-found]
        from mlflow.tracking import MlflowClient  # type: ignore[import-not-found]
    except ImportError:
        shown = uris.redact(tracking) if tracking else "not set"
        raise ValueError(
            f"cannot resolve runs:/{run_id}: the tracking URI is {shown}, and without MLflow installed "
            "artifact_fs resolves runs only through a tracking server; set MLFLOW_TRACKING_URI (or pass "
            "tracking_uri=) to http(s)://<mlflow server>, or install mlflow in this environment"
        ) from None
    try:
        return str(MlflowClient(tracking_uri=tracking).get_run(run_id).info.artifact_uri)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise FileNotFoundError(f"run {run_id!r} not found in the tracking store {tracking}") from exc
        raise


def _artifact_uri_over_rest(run_id: str, tracking: str, environ: Mapping[str, str]) -> str:
    session = af_http.tracking_session(af_http.HttpSettings.from_environ(environ))
    url = f"{tracking.rstrip('/')}/api/2.0/mlflow/runs/get"
    with session, af_http.translating_requests(url, run_id):
        response = session.get(url, params={"run_id": run_id})
    if response.status_code in (400, 404):
        code, message = af_http.error_message(response)
        if code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"} or response.status_code == 404:
            raise FileNotFoundError(
                f"run {run_id!r} not found at the tracking server {uris.redact(tracking)}: {message}"
            )
    af_http.raise_for_status(response, run_id)
    artifact_uri = response.json().get("run", {}).get("info", {}).get("artifact_uri")
    if not artifact_uri:
        raise OSError(
            f"the tracking server {uris.redact(tracking)} returned no artifact_uri for run {run_id!r}"
        )
    return str(artifact_uri)


class RunsFileSystem(AbstractFileSystem):
    """Paths are ``<run_id>/<artifact path>``; each run maps to its own artifact root."""

    protocol = ("runs",)
    root_marker = ""

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
        self.storage_options = dict(storage_options or {})
        self._runs: dict[str, ArtifactRoot] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return _RUNS_PREFIX.sub("", str(path)).strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"runs:/{name}"

    def run_root(self, run_id: str) -> ArtifactRoot:
        """The run's artifact root (resolved once per run)."""
        with self._lock:
            cached = self._runs.get(run_id)
        if cached is not None:
            return cached
        artifact_uri = artifact_uri_of_run(run_id, self.tracking_uri, self.environ)
        parsed = uris.parse(artifact_uri)
        if parsed.scheme == "runs":
            raise ValueError(f"run {run_id!r} has a runs:/ artifact URI ({parsed}); refusing to loop")
        options = dict(self.storage_options)
        if parsed.backend == "mlflow_artifacts" and self.tracking_uri:
            options.setdefault("tracking_uri", self.tracking_uri)
        root = open_root(parsed, environ=self.environ, policy=self.policy, **options)
        with self._lock:
            self._runs[run_id] = root
        return root

    def run_filesystem(self, run_id: str) -> RootFileSystem:
        """The run's artifact root as an artifact-relative filesystem."""
        return self.run_root(run_id).fs

    def _split(self, path: str) -> tuple[str, RootFileSystem, str]:
        run_id, root, relative = self._split_root(path)
        return run_id, root.fs, relative

    def _split_root(self, path: str) -> tuple[str, ArtifactRoot, str]:
        stripped = self._strip_protocol(path)
        run_id, _, relative = stripped.partition("/")
        if not run_id:
            raise ValueError(f"Not a proper runs:/ URI {path!r}; expected runs:/<run_id>/<path>")
        if relative:
            relative = paths.validate_path_is_safe(relative)
        return run_id, self.run_root(run_id), relative

    @staticmethod
    def _named(run_id: str, entry: Any) -> Any:
        if isinstance(entry, dict):
            return {**entry, "name": _join(run_id, entry["name"])}
        return _join(run_id, entry)

    # -- reads --------------------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        run_id, fs, relative = self._split(path)
        return [self._named(run_id, entry) for entry in fs.ls(relative, detail=detail, **kwargs)]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        run_id, fs, relative = self._split(path)
        if not relative:
            return {"name": run_id, "size": 0, "type": "directory"}
        return dict(self._named(run_id, fs.info(relative, **kwargs)))

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        _, fs, relative = self._split(path)
        return bytes(fs.cat_file(relative, start=start, end=end, **kwargs))

    def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        _, fs, relative = self._split(rpath)
        fs.get_file(relative, lpath, **kwargs)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        """The run's backend opens the file with its own file class (writes land, reads use its reader)."""
        _, root, relative = self._split_root(path)
        return root.open(relative, mode, **kwargs)

    def modified(self, path: str) -> Any:
        _, fs, relative = self._split(path)
        return fs.modified(relative)

    # -- writes and deletes -------------------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        _, fs, relative = self._split(path)
        fs.pipe_file(relative, value, **kwargs)

    def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        _, fs, relative = self._split(rpath)
        fs.put_file(lpath, relative, **kwargs)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        run1, fs1, relative1 = self._split(path1)
        run2, fs2, relative2 = self._split(path2)
        if run1 == run2:
            fs1.cp_file(relative1, relative2, **kwargs)
        else:
            fs2.pipe_file(relative2, fs1.cat_file(relative1))

    def rm_file(self, path: str) -> None:
        _, fs, relative = self._split(path)
        fs.rm_file(relative)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        for target in path if isinstance(path, list) else [path]:
            _, fs, relative = self._split(target)
            fs.rm(relative, recursive=recursive, maxdepth=maxdepth)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        _, fs, relative = self._split(path)
        fs.mkdir(relative, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        _, fs, relative = self._split(path)
        fs.makedirs(relative, exist_ok=exist_ok)

    def invalidate_cache(self, path: str | None = None) -> None:
        with self._lock:
            roots = list(self._runs.values())
        for root in roots:
            root.fs.invalidate_cache()


def _join(run_id: str, name: str) -> str:
    return posixpath.join(run_id, name.strip("/")) if name.strip("/") else run_id


def options(
    uri: uris.ArtifactURI,
    environ: Mapping[str, str],
    *,
    policy: TransferPolicy | None = None,
    **overrides: Any,
) -> RunsOptions:
    """``tracking_uri`` and ``environ`` for the lookup; every other option goes to the run's backend."""
    result: RunsOptions = {} if environ is os.environ else {"environ": dict(environ)}
    if policy is not None:
        result["policy"] = policy
    tracking_uri = overrides.pop("tracking_uri", None)
    if tracking_uri:
        result["tracking_uri"] = tracking_uri
    result["storage_options"] = overrides
    return result


def filesystem(options: RunsOptions) -> RunsFileSystem:
    return RunsFileSystem(**options)


def fs_path(uri: uris.ArtifactURI, options: RunsOptions) -> str:
    return _join(uri.run_id or "", uri.run_relative_path)


__all__ = [
    "CAPABILITIES",
    "RunsFileSystem",
    "artifact_uri_of_run",
    "filesystem",
    "fs_path",
    "options",
]
