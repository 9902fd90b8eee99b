"""HTTP sessions that follow MLflow's client rules: auth, TLS, timeouts and urllib3 retries.

Two kinds of session exist, as in MLflow:

* :func:`tracking_session` talks to a tracking / artifact server. It carries the user's credentials
  (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, else ``~/.mlflow/credentials``, else
  ``MLFLOW_TRACKING_TOKEN``), the tracking TLS settings and the ``MLFLOW_HTTP_REQUEST_*`` retry policy.
* :func:`presigned_session` talks to presigned cloud URLs. It never carries credentials (the URL is
  the credential) and uses MLflow's fixed cloud retry policy with ``verify = not MLFLOW_S3_IGNORE_TLS``.

Errors from either are turned into builtin ``OSError`` subclasses by :func:`raise_for_status` and
:func:`translating_requests`, with the server's MLflow error message kept.
"""

from __future__ import annotations

import configparser
import contextlib
import errno
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artifact_fs import errors, settings, uris

# MLflow's _TRANSIENT_FAILURE_RESPONSE_CODES: retried for both kinds of session.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# MLflow's cloud_storage_http_request policy for presigned URLs.
PRESIGNED_MAX_RETRIES, PRESIGNED_BACKOFF_FACTOR, PRESIGNED_BACKOFF_JITTER = 5, 2, 1.0
# Error codes in MLflow's JSON error body -> builtin error class.
MLFLOW_ERROR_CODES: dict[str, type[OSError]] = {
    "RESOURCE_DOES_NOT_EXIST": FileNotFoundError,
    "PERMISSION_DENIED": PermissionError,
    "UNAUTHENTICATED": PermissionError,
    "RESOURCE_ALREADY_EXISTS": FileExistsError,
    "NOT_IMPLEMENTED": errors.MultipartUnsupportedError,  # type: ignore[dict-item]
}


@dataclass(frozen=True)
class HttpSettings:
    """Everything that shapes requests to one MLflow server, resolved once from the environment."""

    timeout: float = 120.0
    max_retries: int = 7
    backoff_factor: float = 2.0
    backoff_jitter: float = 1.0
    respect_retry_after: bool = True
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

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HttpSettings:
        """MLflow's variables, with explicit keyword overrides winning (``timeout=5``...)."""
        env = os.environ if environ is None else environ
        username, password = _credentials(env)
        values: dict[str, Any] = {
            "timeout": float(settings.MLFLOW_HTTP_REQUEST_TIMEOUT.get(env)),
            "max_retries": settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(env),
            "backoff_factor": float(settings.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(env)),
            "backoff_jitter": float(settings.MLFLOW_HTTP_REQUEST_BACKOFF_JITTER.get(env)),
            "respect_retry_after": settings.MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER.get(env),
            "pool_connections": settings.MLFLOW_HTTP_POOL_CONNECTIONS.get(env),
            "pool_maxsize": settings.MLFLOW_HTTP_POOL_MAXSIZE.get(env),
            "allow_redirects": settings.MLFLOW_ALLOW_HTTP_REDIRECTS.get(env),
            "username": username,
            "password": password,
            "token": settings.MLFLOW_TRACKING_TOKEN.get(env),
            "verify": settings.http_tls_verify(env),
            "client_cert": settings.MLFLOW_TRACKING_CLIENT_CERT_PATH.get(env),
            "presigned_verify": not settings.MLFLOW_S3_IGNORE_TLS.get(env),
        }
        unknown = set(overrides) - set(values)
        if unknown:
            raise ValueError(f"unknown HTTP option(s) {sorted(unknown)}; known options: {sorted(values)}")
        values.update(overrides)
        if values["verify"] is False and isinstance(overrides.get("verify"), str):
            raise ValueError("verify cannot be both False and a CA bundle path")
        return cls(**values)

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
        if isinstance(error, urllib3.exceptions.SSLError) and _is_verification_failure(error):
            raise urllib3.exceptions.MaxRetryError(_pool, url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _is_verification_failure(error: BaseException) -> bool:
    causes = [error, error.__cause__, error.__context__, *error.args]
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes)


def _retry(total: int, factor: float, jitter: float, respect_retry_after: bool) -> Retry:
    return _Retry(
        total=total,
        connect=total,
        read=total,
        redirect=total,
        status=total,
        status_forcelist=TRANSIENT_STATUSES,
        backoff_factor=factor,
        backoff_jitter=jitter,
        allowed_methods=None,  # MLflow retries every verb; bodies are rewound by urllib3
        respect_retry_after_header=respect_retry_after,
        raise_on_status=False,
    )


class _TimeoutSession(requests.Session):
    """A session whose requests default to a timeout (requests has none by default)."""

    def __init__(self, timeout: float | None, allow_redirects: bool = True) -> None:
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
    """A session for one tracking / artifact server (credentials, TLS, MLflow's retry policy)."""
    session = _TimeoutSession(options.timeout, options.allow_redirects)
    adapter = HTTPAdapter(
        pool_connections=options.pool_connections,
        pool_maxsize=options.pool_maxsize,
        max_retries=_retry(
            options.max_retries, options.backoff_factor, options.backoff_jitter, options.respect_retry_after
        ),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = options.verify
    if options.client_cert:
        session.cert = options.client_cert
    header = options.auth_header
    if header:
        session.headers["Authorization"] = header
    session.trust_env = True
    return session


def presigned_session(options: HttpSettings, pool_maxsize: int = 10) -> requests.Session:
    """A session for presigned URLs: no credentials, MLflow's fixed cloud retry policy."""
    session = _TimeoutSession(options.timeout)
    adapter = HTTPAdapter(
        pool_connections=options.pool_connections,
        pool_maxsize=pool_maxsize,
        max_retries=_retry(PRESIGNED_MAX_RETRIES, PRESIGNED_BACKOFF_FACTOR, PRESIGNED_BACKOFF_JITTER, True),
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
    """Raise the builtin ``OSError`` for a failed response, naming the redacted URL and the reason."""
    if response.status_code < 400:
        return
    code, message = error_message(response)
    rule = errors.HTTP_STATUSES.get(response.status_code)
    klass: type[OSError] = rule.error if rule else OSError
    if code in MLFLOW_ERROR_CODES:
        klass = MLFLOW_ERROR_CODES[code]
    elif response.status_code == 501:
        klass = errors.MultipartUnsupportedError  # type: ignore[assignment]
    url = uris.redact(response.url.split("?", 1)[0])
    text = f"{response.request.method} {url} failed with HTTP {response.status_code}"
    text += f" {code}: {message}" if code else f": {message}"
    if issubclass(klass, OSError):
        error = klass(_errno(klass), text)
        if path is not None:
            error.filename = path
    else:
        error = klass(text)
    error.status_code = response.status_code  # type: ignore[attr-defined]
    error.error_code = code  # type: ignore[attr-defined]
    raise error


def _errno(klass: type[OSError]) -> int:
    for builtin, number in (
        (FileNotFoundError, errno.ENOENT),
        (PermissionError, errno.EACCES),
        (FileExistsError, errno.EEXIST),
        (TimeoutError, errno.ETIMEDOUT),
    ):
        if issubclass(klass, builtin):
            return number
    return errno.EIO


@contextlib.contextmanager
def translating_requests(url: str, path: str | None = None) -> Iterator[None]:
    """Turn requests' transport errors into builtin errors with a hint at the variable to change."""
    try:
        yield
    except (requests.Timeout, requests.ConnectionError) as exc:
        if not _is_timeout(exc):
            raise _connection_error(exc, url, path) from exc
        raise TimeoutError(
            errno.ETIMEDOUT,
            f"request to {uris.redact(url)} timed out ({exc}); raise MLFLOW_HTTP_REQUEST_TIMEOUT "
            "(seconds) if the server is slow, or check that it is reachable",
            path,
        ) from exc
    except requests.RequestException as exc:
        raise errors.translate(exc, path) from exc


def _is_timeout(exc: requests.RequestException) -> bool:
    """True for timeouts, including a read timeout that exhausted urllib3's retries."""
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3's NewConnectionError (refused, DNS) subclasses its ConnectTimeoutError for history's sake.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _connection_error(exc: requests.RequestException, url: str, path: str | None) -> ConnectionError:
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionError(
            errno.ECONNREFUSED,
            f"TLS verification failed for {uris.redact(url)} ({exc}); set MLFLOW_TRACKING_SERVER_CERT_PATH "
            "to the server's CA bundle (or MLFLOW_TRACKING_INSECURE_TLS=true to skip verification)",
            path,
        )
    return ConnectionError(errno.ECONNREFUSED, f"cannot reach {uris.redact(url)}: {exc}", path)
