"""HTTP sessions that follow MLflow's client rules: auth, TLS, timeouts and urllib3 retries.

Two kinds of session exist, as in MLflow:

* :func:`tracking_session` talks to a tracking / artifact server. It carries the user's credentials
  (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, else ``~/.mlflow/credentials``, else
  ``MLFLOW_TRACKING_TOKEN``), the tracking TLS settings and the transfer policy's retries.
* :func:`presigned_session` talks to presigned cloud URLs. It never carries credentials (the URL is
  the credential) and uses MLflow's fixed cloud retry policy with ``verify = not MLFLOW_S3_IGNORE_TLS``.

Timeouts, retries, back-off, jitter and ``Retry-After`` come from one
:class:`artifact_fs.policy.TransferPolicy`; urllib3's ``Retry`` does the retrying. Failed responses
and transport errors become builtin ``OSError`` subclasses in :mod:`artifact_fs.errors`
(:func:`raise_for_status` only reads MLflow's error body).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artifact_fs import errors, settings
from artifact_fs.policy import TransferPolicy

# MLflow's _TRANSIENT_FAILURE_RESPONSE_CODES: retried for both kinds of session.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
PRESIGNED_RETRIES: dict[str, Any] = {
    "max_retries": 5,
    "backoff_factor": 2.0,
    "backoff_jitter": 1.0,
    "respect_retry_after": True,
}
"""MLflow's ``cloud_storage_http_request`` defaults, its documented policy for presigned URLs."""
POLICY_OPTIONS = {
    "timeout": "request_timeout",
    "connect_timeout": "connect_timeout",
    "max_retries": "max_retries",
    "backoff_factor": "backoff_factor",
    "backoff_jitter": "backoff_jitter",
    "respect_retry_after": "respect_retry_after",
}
"""``http_options`` names that set a field of the transfer policy (``timeout=5`` is ``request_timeout``)."""


WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
"""The header a workspace-mode MLflow server scopes every request by (MLflow >= 3.10)."""


@dataclass(frozen=True)
class HttpSettings:
    """Everything that shapes requests to one MLflow server: a transfer policy, auth and TLS."""

    policy: TransferPolicy = field(default_factory=TransferPolicy)
    pool_connections: int = 10
    pool_maxsize: int = 10
    allow_redirects: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    client_cert: str | None = None
    presigned_verify: bool = True
    """``not MLFLOW_S3_IGNORE_TLS``: MLflow reuses the S3 switch for presigned part uploads."""
    workspace: str | None = None
    """``MLFLOW_WORKSPACE``: sent as ``X-MLFLOW-WORKSPACE``, as MLflow's REST client does."""

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        policy: TransferPolicy | None = None,
        **overrides: Any,
    ) -> HttpSettings:
        """MLflow's variables (the policy's from ``policy`` when given); explicit overrides win.

        ``timeout``, ``max_retries``, ``backoff_factor``, ``backoff_jitter``, ``respect_retry_after``
        and ``connect_timeout`` override the policy's fields; the others this class's.
        """
        env = os.environ if environ is None else environ
        own = {item.name for item in fields(cls)} - {"policy"}
        unknown = set(overrides) - own - set(POLICY_OPTIONS)
        if unknown:
            known = sorted(own | set(POLICY_OPTIONS))
            raise ValueError(f"unknown HTTP option(s) {sorted(unknown)}; known options: {known}")
        policy = policy or TransferPolicy.from_environ(env)
        policy_overrides = {
            POLICY_OPTIONS[name]: overrides.pop(name) for name in list(overrides) if name in POLICY_OPTIONS
        }
        if "request_timeout" in policy_overrides:
            policy_overrides["request_timeout"] = float(policy_overrides["request_timeout"])
        username, password = _credentials(env)
        values: dict[str, Any] = {
            "policy": replace(policy, **policy_overrides) if policy_overrides else policy,
            "pool_connections": settings.MLFLOW_HTTP_POOL_CONNECTIONS.get(env),
            "pool_maxsize": settings.MLFLOW_HTTP_POOL_MAXSIZE.get(env),
            "allow_redirects": settings.MLFLOW_ALLOW_HTTP_REDIRECTS.get(env),
            "username": username,
            "password": password,
            "token": settings.MLFLOW_TRACKING_TOKEN.get(env),
            "verify": settings.http_tls_verify(env),
            "client_cert": settings.MLFLOW_TRACKING_CLIENT_CERT_PATH.get(env),
            "presigned_verify": not settings.MLFLOW_S3_IGNORE_TLS.get(env),
            "workspace": settings.MLFLOW_WORKSPACE.get(env),
        }
        values.update(overrides)
        if values["verify"] is False and isinstance(overrides.get("verify"), str):
            raise ValueError("verify cannot be both False and a CA bundle path")
        return cls(**values)

    # The policy's numbers under the names MLflow's variables use.
    @property
    def timeout(self) -> float:
        return self.policy.request_timeout

    @property
    def max_retries(self) -> int:
        return self.policy.max_retries

    @property
    def backoff_factor(self) -> float:
        return self.policy.backoff_factor

    @property
    def backoff_jitter(self) -> float:
        return self.policy.backoff_jitter

    @property
    def respect_retry_after(self) -> bool:
        return self.policy.respect_retry_after

    @property
    def auth_header(self) -> str | None:
        """MLflow's rule: basic auth when both user and password are known, else a bearer token."""
        if self.username and self.password:
            return requests.auth._basic_auth_str(self.username, self.password)
        if self.token:
            return f"Bearer {self.token}"
        return None


def _credentials(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Username and password: each variable wins over ``~/.mlflow/credentials`` separately."""
    username = settings.MLFLOW_TRACKING_USERNAME.get(environ)
    password = settings.MLFLOW_TRACKING_PASSWORD.get(environ)
    if username and password:
        return username, password
    home = environ.get("HOME") or os.path.expanduser("~")
    path = os.path.join(home, ".mlflow", "credentials")
    if os.path.isfile(path):
        parser = configparser.ConfigParser()
        parser.read(path)
        if parser.has_section("mlflow"):
            username = username or parser.get("mlflow", "mlflow_tracking_username", fallback=None)
            password = password or parser.get("mlflow", "mlflow_tracking_password", fallback=None)
    return username, password


class _Retry(Retry):
    """MLflow's retry policy, except that a failed certificate verification is final.

    urllib3 retries every SSL error like a dropped connection; a certificate the client does not
    trust fails identically on every attempt, so retrying only delays the error by minutes of backoff.
    """

    def increment(  # type: ignore[override]  # urllib3 passes everything but method and url by name
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        if isinstance(error, urllib3.exceptions.SSLError) and errors.is_certificate_failure(error):
            raise urllib3.exceptions.MaxRetryError(_pool, url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def retry_for(policy: TransferPolicy) -> Retry:
    """urllib3's ``Retry`` configured from the policy: every verb, MLflow's transient statuses."""
    total = policy.max_retries
    return _Retry(
        total=total,
        connect=total,
        read=total,
        redirect=total,
        status=total,
        status_forcelist=TRANSIENT_STATUSES,
        backoff_factor=policy.backoff_factor,
        backoff_jitter=policy.backoff_jitter,
        allowed_methods=None,  # MLflow retries every verb; bodies are rewound by urllib3
        respect_retry_after_header=policy.respect_retry_after,
        raise_on_status=False,
    )


def timeout_for(read_timeout: float | None, policy: TransferPolicy) -> tuple[float, float | None]:
    """requests' ``(connect, read)``: an unreachable host fails within the policy's connect timeout."""
    connect = policy.connect_timeout if read_timeout is None else min(policy.connect_timeout, read_timeout)
    return connect, read_timeout


def transfer_timeout(policy: TransferPolicy) -> tuple[float, float | None]:
    """requests' ``(connect, read)`` for artifact bodies (uploads and downloads).

    ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` when set (``-1``: no read timeout), else the request
    timeout. requests' timeouts bound each socket operation, so a stalled transfer fails within it
    whichever way the bytes flow (urllib3 sends a body under the connect timeout, hence its min).
    """
    return timeout_for(policy.transfer_timeout_or(policy.request_timeout), policy)


class _TimeoutSession(requests.Session):
    """A session whose requests default to a timeout (requests has none by default)."""

    def __init__(self, timeout: tuple[float, float | None], allow_redirects: bool = True) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.allow_redirects = allow_redirects

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        kwargs.setdefault("allow_redirects", self.allow_redirects)
        if self.verify is not True:
            # Per request, as MLflow passes it: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
            # replace a session-level CA path or False, silently ignoring MLFLOW_TRACKING_SERVER_CERT_PATH
            # and MLFLOW_TRACKING_INSECURE_TLS wherever those variables are set.
            kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def tracking_session(options: HttpSettings) -> requests.Session:
    """A session for one tracking / artifact server (credentials, TLS, the policy's retries)."""
    session = _TimeoutSession(timeout_for(options.timeout, options.policy), options.allow_redirects)
    adapter = HTTPAdapter(
        pool_connections=options.pool_connections,
        pool_maxsize=options.pool_maxsize,
        max_retries=retry_for(options.policy),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = options.verify
    if options.client_cert:
        session.cert = options.client_cert
    header = options.auth_header
    if header:
        session.headers["Authorization"] = header
    if options.workspace:
        session.headers[WORKSPACE_HEADER] = options.workspace
    session.trust_env = True
    return session


def presigned_session(options: HttpSettings, pool_maxsize: int | None = None) -> requests.Session:
    """A session for presigned URLs: no credentials, MLflow's fixed cloud retry policy.

    Transfers to the store wait ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` when it is set, else the
    request timeout; the pool holds one connection per transfer thread.
    """
    policy = replace(options.policy, **PRESIGNED_RETRIES)
    session = _TimeoutSession(transfer_timeout(policy))
    adapter = HTTPAdapter(
        pool_connections=options.pool_connections,
        pool_maxsize=pool_maxsize or policy.thread_workers,
        max_retries=retry_for(policy),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = options.presigned_verify
    return session


def error_message(response: requests.Response) -> tuple[str | None, str]:
    """MLflow's ``(error_code, message)`` from a failed response (JSON body, FastAPI detail or text)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:500].strip() or response.reason or ""
    if isinstance(body, dict):
        code = body.get("error_code")
        message = body.get("message") or body.get("detail") or response.text[:500]
        return (str(code) if code else None), str(message)
    return None, response.text[:500]


def raise_for_status(response: requests.Response, path: str | None = None) -> None:
    """Raise :func:`artifact_fs.errors.http_error` for a failed response (MLflow's error body read)."""
    if response.status_code < 400:
        return
    code, message = error_message(response)
    raise errors.http_error(
        response.status_code,
        method=str(response.request.method),
        url=response.url,
        error_code=code,
        message=message,
        path=path,
    )


def translating_requests(url: str, path: str | None = None) -> AbstractContextManager[None]:
    """Transport errors of the requests inside become builtin errors with a hint (see ``errors``)."""
    return errors.translating_transport(url, path)
