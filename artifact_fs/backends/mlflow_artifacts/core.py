"""The proxied client's connection to one server: its URL, its HTTP sessions, its paths and what it offers.

:class:`ArtifactsClient` is the base of :class:`~artifact_fs.backends.mlflow_artifacts.filesystem.
MlflowArtifactsFileSystem`; listing, reads and writes build on it in their own modules. Paths are
artifact paths relative to the server's artifact root (``0/<run>/artifacts/model.pkl``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from fsspec.spec import AbstractFileSystem

from artifact_fs import http as af_http
from artifact_fs import paths, settings
from artifact_fs.backends.mlflow_artifacts.resolve import artifact_path_of, deployment_root, service_url
from artifact_fs.policy import TransferPolicy

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 256 * settings.KIB
"""Read-ahead of random-access reads: small, so a Parquet column read fetches little beyond it."""
STREAM_CHUNK = settings.MIB
SPOOL_IN_MEMORY = 8 * settings.MIB
PRESIGNED_URL_REUSE_SECONDS = 60.0
"""Re-ask for a presigned URL after this long (MLflow's default TTL is 300 s)."""


class ArtifactsClient(AbstractFileSystem):
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
    policy:
        Timeouts, retries and concurrency (default: ``TransferPolicy.from_environ(environ)``).
    max_workers:
        Threads for multipart transfers (default: the policy's ``thread_workers``).
    http_options:
        Overrides of :class:`artifact_fs.http.HttpSettings` (``timeout``, ``max_retries``, ...);
        they win over ``policy``.
    """

    protocol: Any = ("mlflow-artifacts",)
    root_marker = ""

    def __init__(
        self,
        service_url: str | None = None,
        *,
        tracking_uri: str | None = None,
        authority: str | None = None,
        environ: Mapping[str, str] | None = None,
        policy: TransferPolicy | None = None,
        enable_multipart_upload: bool | None = None,
        enable_multipart_download: bool | None = None,
        multipart_upload_minimum_size: int | None = None,
        multipart_upload_chunk_size: int | None = None,
        multipart_download_chunk_size: int | None = None,
        max_workers: int | None = None,
        block_size: int | None = None,
        http_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        env = os.environ if environ is None else environ
        if service_url is None:
            source = f"mlflow-artifacts://{authority}/" if authority else None
            service_url = _resolve_service_url(source, tracking_uri, env)
        self.service_url = service_url.rstrip("/")
        http_options = dict(http_options or {})
        self.http_settings = af_http.HttpSettings.from_environ(env, policy=policy, **http_options)
        self.policy: TransferPolicy = self.http_settings.policy
        self.max_workers = max_workers or self.policy.thread_workers
        if "pool_maxsize" not in http_options and not settings.MLFLOW_HTTP_POOL_MAXSIZE.is_set(env):
            # A connection per transfer thread, kept alive (MLflow's variable wins when set).
            pool_size = max(self.max_workers, self.policy.connection_pool_size)
            self.http_settings = dataclasses.replace(self.http_settings, pool_maxsize=pool_size)
        self.session = af_http.tracking_session(self.http_settings)
        _read_environment_once(self.session, self.service_url)
        self.transfer_timeout = af_http.transfer_timeout(self.policy)
        """``(connect, read)`` for artifact bodies: ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` when set."""
        self.presigned_session = af_http.presigned_session(
            self.http_settings, pool_maxsize=self.http_settings.pool_maxsize
        )
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
        self.blocksize = block_size or DEFAULT_BLOCK_SIZE
        self._server_info: dict[str, Any] | None = None
        self._server_info_lock = threading.Lock()
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
        if method == "PUT":  # an upload's body: bounded by the transfer timeout, as MLflow's stores are
            kwargs.setdefault("timeout", self.transfer_timeout)
        with af_http.translating_requests(url, path):
            response = self.session.request(method, url, **kwargs)
        af_http.raise_for_status(response, path)
        return response

    # -- server capabilities ------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """``/api/3.0/mlflow/server-info``, asked once per filesystem; a transient failure is not cached
        (MLflow's rule).

        The transfer threads of a tree start together and all ask; the lock makes the first one ask
        and the others wait for its answer, instead of one request per thread.
        """
        if self._server_info is not None:
            return self._server_info
        with self._server_info_lock:
            if self._server_info is not None:
                return self._server_info
            return self._fetch_server_info()

    def _fetch_server_info(self) -> dict[str, Any]:
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


def _read_environment_once(session: requests.Session, url: str) -> None:
    """Settle what requests would read from the environment on every request to ``url``'s server.

    With ``trust_env`` requests scans every variable for proxies, reads ``~/.netrc`` and looks up
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` for each request: a sixth of the client's CPU time
    per small file. The answers are the same for every request to this one server, so they are
    resolved here, by requests' own functions and precedence, and ``trust_env`` is turned off.
    """
    if not session.trust_env:
        return
    environ_proxies = requests.utils.get_environ_proxies(url, no_proxy=session.proxies.get("no_proxy"))
    for scheme, proxy in environ_proxies.items():
        session.proxies.setdefault(scheme, proxy)
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(url)
    if session.verify is True:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False


def _pick_override(
    explicit: bool | None, setting: settings.Setting[bool], environ: Mapping[str, str]
) -> bool | None:
    """An explicit value, else the variable *if set* (MLflow's client override), else None."""
    if explicit is not None:
        return explicit
    return setting.get(environ) if setting.is_set(environ) else None


def _resolve_service_url(uri: str | None, tracking_uri: str | None, environ: Mapping[str, str]) -> str:
    """:func:`service_url` (the constructor's ``service_url`` argument shadows its name)."""
    return service_url(uri, tracking_uri, environ)
