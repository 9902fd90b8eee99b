"""One translation table from backend errors to builtin ``OSError`` subclasses.

fsspec's contract is that filesystems raise builtin errors (``FileNotFoundError``,
``PermissionError``, ...). Every backend sends its SDK's exceptions through :func:`translate`
(usually via :func:`translating`), so the mapping lives here and nowhere else. The original
exception is always kept as ``__cause__``.

The same table also gives MLflow's error codes and HTTP statuses for the artifact server.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import re
import ssl
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, ParamSpec, TypeVar

from fsspec.asyn import mirror_sync_methods
from fsspec.exceptions import FSTimeoutError

from artifact_fs import uris

P = ParamSpec("P")
T = TypeVar("T")


class InvalidArtifactPathError(PermissionError, ValueError):
    """An artifact path that could escape its root (``..``, absolute, encoded traversal, ...).

    Both a ``ValueError`` (bad input, as MLflow's INVALID_PARAMETER_VALUE) and an ``OSError``
    (fsspec's contract), so either ``except`` clause catches it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(errno.EACCES, f"Invalid artifact path {path!r}: {reason}")
        self.path = path
        self.reason = reason


class MultipartUnsupportedError(NotImplementedError):
    """The store cannot do presigned multipart uploads; servers answer 501 so clients fall back."""


class Rule(NamedTuple):
    """One row of the table: the builtin class an error becomes, and whether trying again may help."""

    error: type[OSError]
    retryable: bool
    errno: int | None = None
    """The ``errno`` the translated error carries, where the class alone does not say it (ENOTEMPTY)."""


# Provider error codes (S3 XML codes, Azure error codes, GCS reasons) -> builtin error class.
ERROR_CODES: dict[str, Rule] = {
    # S3 and S3-compatible stores
    "SlowDown": Rule(OSError, True),
    "RequestTimeout": Rule(TimeoutError, True),
    "InternalError": Rule(OSError, True),
    "ServiceUnavailable": Rule(OSError, True),
    "RequestLimitExceeded": Rule(OSError, True),
    "Throttling": Rule(OSError, True),
    "NoSuchKey": Rule(FileNotFoundError, False),
    "NoSuchBucket": Rule(FileNotFoundError, False),
    "NoSuchUpload": Rule(FileNotFoundError, False),
    "NotFound": Rule(FileNotFoundError, False),
    "404": Rule(FileNotFoundError, False),
    "AccessDenied": Rule(PermissionError, False),
    "AllAccessDisabled": Rule(PermissionError, False),
    "403": Rule(PermissionError, False),
    "InvalidAccessKeyId": Rule(PermissionError, False),
    "SignatureDoesNotMatch": Rule(PermissionError, False),
    "ExpiredToken": Rule(PermissionError, False),
    "InvalidToken": Rule(PermissionError, False),
    "AccountProblem": Rule(PermissionError, False),
    "BucketAlreadyExists": Rule(FileExistsError, False),
    "BucketAlreadyOwnedByYou": Rule(FileExistsError, False),
    "PreconditionFailed": Rule(FileExistsError, False),
    "BucketNotEmpty": Rule(OSError, False),
    "InvalidBucketName": Rule(ValueError, False),  # type: ignore[arg-type]  # bad input, not I/O
    "InvalidRange": Rule(OSError, False),  # see is_invalid_range: fsspec's answer is b""
    # Azure Blob / ADLS
    "BlobNotFound": Rule(FileNotFoundError, False),
    "ContainerNotFound": Rule(FileNotFoundError, False),
    "PathNotFound": Rule(FileNotFoundError, False),
    "FilesystemNotFound": Rule(FileNotFoundError, False),
    "ResourceNotFound": Rule(FileNotFoundError, False),
    "AuthenticationFailed": Rule(PermissionError, False),
    "AuthorizationFailure": Rule(PermissionError, False),
    "AuthorizationPermissionMismatch": Rule(PermissionError, False),
    "InsufficientAccountPermissions": Rule(PermissionError, False),
    "BlobAlreadyExists": Rule(FileExistsError, False),
    "ContainerAlreadyExists": Rule(FileExistsError, False),
    "PathAlreadyExists": Rule(FileExistsError, False),
    "ConditionNotMet": Rule(FileExistsError, False),
    "ServerBusy": Rule(OSError, True),
    "OperationTimedOut": Rule(TimeoutError, True),
    "InternalServerError": Rule(OSError, True),
    # HDFS: the Java exception class a NameNode returns (simple name)
    "FileNotFoundException": Rule(FileNotFoundError, False),
    "FileAlreadyExistsException": Rule(FileExistsError, False),
    "AccessControlException": Rule(PermissionError, False),
    "ParentNotDirectoryException": Rule(NotADirectoryError, False),
    "PathIsNotDirectoryException": Rule(NotADirectoryError, False),
    "PathIsNotEmptyDirectoryException": Rule(OSError, False, errno.ENOTEMPTY),
    "SafeModeException": Rule(OSError, True),  # the NameNode is starting up
    "RetriableException": Rule(OSError, True),
    "StandbyException": Rule(ConnectionError, True),  # a standby NameNode: another one serves
    "DSQuotaExceededException": Rule(OSError, False, errno.EDQUOT),
    "NSQuotaExceededException": Rule(OSError, False, errno.EDQUOT),
    "InvalidPathException": Rule(OSError, False, errno.EINVAL),
    # MLflow REST API (the proxied-artifact HTTP client): ``error_code`` of MLflow's JSON error body
    "RESOURCE_DOES_NOT_EXIST": Rule(FileNotFoundError, False),
    "PERMISSION_DENIED": Rule(PermissionError, False),
    "UNAUTHENTICATED": Rule(PermissionError, False),
    "RESOURCE_ALREADY_EXISTS": Rule(FileExistsError, False),
    "NOT_IMPLEMENTED": Rule(MultipartUnsupportedError, False),  # type: ignore[arg-type]  # clients fall back
    "INTERNAL_ERROR": Rule(OSError, True),
    "TEMPORARILY_UNAVAILABLE": Rule(OSError, True),
    "REQUEST_LIMIT_EXCEEDED": Rule(OSError, True),
    "DEADLINE_EXCEEDED": Rule(TimeoutError, True),
}

# HTTP statuses -> builtin error class, for every HTTP-speaking backend.
HTTP_STATUSES: dict[int, Rule] = {
    400: Rule(OSError, False),
    401: Rule(PermissionError, False),
    403: Rule(PermissionError, False),
    404: Rule(FileNotFoundError, False),
    408: Rule(TimeoutError, True),
    409: Rule(FileExistsError, False),
    412: Rule(FileExistsError, False),
    416: Rule(OSError, False),
    429: Rule(OSError, True),
    500: Rule(OSError, True),
    501: Rule(OSError, False),
    502: Rule(ConnectionError, True),
    503: Rule(OSError, True),
    504: Rule(TimeoutError, True),
}

# Exception class names from SDKs we do not import eagerly -> builtin error class.
EXCEPTION_NAMES: dict[str, Rule] = {
    "ResourceNotFoundError": Rule(FileNotFoundError, False),  # azure.core
    "ResourceExistsError": Rule(FileExistsError, False),  # azure.core
    "ClientAuthenticationError": Rule(PermissionError, False),  # azure.core
    "ServiceRequestTimeoutError": Rule(TimeoutError, True),  # azure.core
    "ServiceResponseTimeoutError": Rule(TimeoutError, True),  # azure.core
    "ServiceRequestError": Rule(ConnectionError, True),  # azure.core: connection refused / DNS
    "NoCredentialsError": Rule(PermissionError, False),  # botocore
    "PartialCredentialsError": Rule(PermissionError, False),  # botocore
    "EndpointConnectionError": Rule(ConnectionError, True),  # botocore
    "ConnectTimeoutError": Rule(TimeoutError, True),  # botocore
    "ReadTimeoutError": Rule(TimeoutError, True),  # botocore / urllib3
    "DefaultCredentialsError": Rule(PermissionError, False),  # google.auth
    "NotFound": Rule(FileNotFoundError, False),  # google.api_core
    "Forbidden": Rule(PermissionError, False),  # google.api_core
    "Unauthorized": Rule(PermissionError, False),  # google.api_core
    "Conflict": Rule(FileExistsError, False),  # google.api_core
    "PreconditionFailed": Rule(FileExistsError, False),  # google.api_core
    "PermissionDenied": Rule(PermissionError, False),  # asyncssh
    "HostKeyNotVerifiable": Rule(PermissionError, False),  # asyncssh
    "SFTPNoSuchFile": Rule(FileNotFoundError, False),  # asyncssh
    "SFTPPermissionDenied": Rule(PermissionError, False),  # asyncssh
    "SFTPFileAlreadyExists": Rule(FileExistsError, False),  # asyncssh
    "SSLCertVerificationError": Rule(PermissionError, False),  # ssl (ftplib's FTPS)
    "EOFError": Rule(ConnectionError, True, errno.ECONNRESET),  # ftplib: the server hung up
    "ConnectionError": Rule(ConnectionError, True),  # requests
    "ConnectTimeout": Rule(TimeoutError, True),  # requests
    "ReadTimeout": Rule(TimeoutError, True),  # requests
    "Timeout": Rule(TimeoutError, True),  # requests
    "ClientConnectorError": Rule(ConnectionError, True),  # aiohttp
    "ServerTimeoutError": Rule(TimeoutError, True),  # aiohttp
    "ClientPayloadError": Rule(ConnectionError, True, errno.ECONNRESET),  # aiohttp: a body cut short
    "ServerDisconnectedError": Rule(ConnectionError, True, errno.ECONNRESET),  # aiohttp
    "ResponseStreamingError": Rule(ConnectionError, True, errno.ECONNRESET),  # botocore: the same
    "NewConnectionError": Rule(ConnectionError, True),  # urllib3: refused / DNS
    "ProtocolError": Rule(ConnectionError, True),  # urllib3: the connection dropped mid-response
    "ChunkedEncodingError": Rule(ConnectionError, True),  # requests: the same, seen while streaming
    "ProxyError": Rule(ConnectionError, True),  # requests / urllib3
}

_ERRNO_FOR: dict[type[OSError], int] = {
    FileNotFoundError: errno.ENOENT,
    PermissionError: errno.EACCES,
    FileExistsError: errno.EEXIST,
    TimeoutError: errno.ETIMEDOUT,
    ConnectionError: errno.ECONNREFUSED,
    IsADirectoryError: errno.EISDIR,
    NotADirectoryError: errno.ENOTDIR,
}


def _error_code(exc: BaseException) -> str | None:
    """The provider's error code, whatever SDK raised ``exc``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    code = getattr(exc, "error_code", None)  # azure.core HttpResponseError
    if code is not None:
        return str(getattr(code, "value", code))
    return None


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by ``exc``, if any."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    for holder in (exc, response):
        for attribute in ("status_code", "status", "code"):
            value = getattr(holder, attribute, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
    return None


def _is_builtin_like(exc: BaseException) -> bool:
    """Builtin exceptions and our own already speak fsspec's contract."""
    return type(exc).__module__ in {"builtins", __name__, "artifact_fs.integrity"}


def _builtin_ancestor(klass: type[OSError]) -> type[OSError]:
    for ancestor in klass.__mro__:
        if ancestor.__module__ == "builtins" and issubclass(ancestor, OSError):
            return ancestor
    return OSError


def rule_for(exc: BaseException) -> Rule | None:
    """The table's row for a foreign exception: by provider code, SDK class name, then HTTP status."""
    for classifier in CLASSIFIERS:
        classified = classifier(exc)
        if classified is not None:
            return classified
    code = _error_code(exc)
    if code is not None and code in ERROR_CODES and issubclass(ERROR_CODES[code].error, OSError):
        return ERROR_CODES[code]
    transport = transport_rule(exc)
    if transport is not None:
        return transport
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:  # aiohttp's ClientOSError, a socket's
        return Rule(TimeoutError, True)
    for klass in type(exc).__mro__:
        if klass.__name__ in EXCEPTION_NAMES:
            return EXCEPTION_NAMES[klass.__name__]
    status = _http_status(exc)
    if status is not None and status in HTTP_STATUSES:
        return HTTP_STATUSES[status]
    return None


def error_class(exc: BaseException) -> type[OSError]:
    """The builtin ``OSError`` subclass that stands for ``exc``."""
    if isinstance(exc, OSError) and _is_builtin_like(exc):
        return type(exc)
    rule = rule_for(exc)
    if rule is not None:
        return rule.error
    if isinstance(exc, OSError):  # a library's own OSError subclass (requests, paramiko, ...)
        return _builtin_ancestor(type(exc))
    if isinstance(exc, TimeoutError):
        return TimeoutError
    return OSError


TRANSIENT_CLASSES: tuple[type[OSError], ...] = (ConnectionError, TimeoutError)
"""Builtin classes that mean the network, not the request, failed: always worth another try."""


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the same operation again may succeed (the table's mark; transport errors yes).

    A translated error is judged by its cause, so the mark survives translation.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "retryable", None) is not None:
            return bool(current.retryable)  # type: ignore[attr-defined]
        # hdfs-native's RPCError is a builtin RuntimeError whose text names the remote exception.
        rule = hdfs_rpc_rule(current) if _is_builtin_like(current) else rule_for(current)
        if rule is not None:
            return rule.retryable
        if isinstance(current, (*TRANSIENT_CLASSES, EOFError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate(exc: BaseException, path: str | None = None, *, action: str | None = None) -> OSError:
    """Turn any backend exception into a builtin ``OSError`` naming ``path``; the cause is kept.

    A builtin ``OSError`` (or one of ours) is returned unchanged: it is fsspec's contract already.
    A library's own ``OSError`` subclass (``requests.ConnectTimeout``) becomes its builtin meaning.
    ``action`` (``"FTP read"``) makes the message say what failed (``FTP read '/a' failed: ...``);
    with it, a builtin error that names no file yet (a refused connection) is re-made naming ``path``.
    """
    if isinstance(exc, OSError) and _is_builtin_like(exc):
        refined = hdfs_refined_builtin(exc, path)
        if refined is not None:
            return refined
        if action is None or exc.filename is not None or type(exc).__module__ != "builtins":
            return exc
        klass: type[OSError] = type(exc)
        number = exc.errno or _ERRNO_FOR.get(klass, errno.EIO)
        detail = exc.strerror or str(exc) or klass.__name__
    else:
        klass = error_class(exc)
        rule = rule_for(exc)
        number = rule.errno if rule is not None and rule.errno else _ERRNO_FOR.get(klass, errno.EIO)
        code = _error_code(exc)
        detail = _described(exc) or (
            f"{code}: {exc}" if code and code not in str(exc) else str(exc) or type(exc).__name__
        )
    if action is not None:
        message = f"{action} {path!r} failed: {detail}" if path else f"{action} failed: {detail}"
    else:
        message = f"{detail} (path: {path})" if path else detail
    translated = klass(number, message)
    if path is not None:
        translated.filename = path
    translated.__cause__ = exc
    return translated


_PASS_THROUGH = (ValueError, TypeError, NotImplementedError, KeyError, AssertionError)


@contextlib.contextmanager
def translating(path: str | None = None, *, action: str | None = None) -> Iterator[None]:
    """Context manager: any non-builtin error raised inside becomes a translated ``OSError``.

    Bad input (``ValueError``, ``TypeError``, ...) passes through unless the table has a row for
    it (``ssl.SSLCertVerificationError`` is a ``ValueError`` too, but means "not trusted").
    """
    try:
        yield
    except _PASS_THROUGH as exc:
        if rule_for(exc) is None:
            raise
        raise translate(exc, path, action=action) from exc
    except Exception as exc:
        translated = translate(exc, path, action=action)
        if translated is exc:
            raise
        raise translated from exc


def translate_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of :func:`translating` for sync and async methods; names the first path argument."""

    def _path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        candidate = kwargs.get("path", args[1] if len(args) > 1 else None)
        return candidate if isinstance(candidate, str) else None

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with translating(_path(args, kwargs)):
                return await func(*args, **kwargs)  # type: ignore[misc]

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with translating(_path(args, kwargs)):
            return func(*args, **kwargs)

    return wrapper


# MLflow's error codes and the HTTP status its server sends for each.
MLFLOW_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 409,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}


def mlflow_error_code(exc: BaseException) -> str:
    """MLflow's error code for ``exc`` (what the artifact server puts in ``error_code``)."""
    if isinstance(exc, InvalidArtifactPathError):
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, NotImplementedError):
        return "NOT_IMPLEMENTED"
    if isinstance(exc, ValueError):
        return "INVALID_PARAMETER_VALUE"
    klass = error_class(exc)
    if issubclass(klass, FileNotFoundError):
        return "RESOURCE_DOES_NOT_EXIST"
    if issubclass(klass, PermissionError):
        return "PERMISSION_DENIED"
    if issubclass(klass, FileExistsError):
        return "RESOURCE_ALREADY_EXISTS"
    if issubclass(klass, IsADirectoryError | NotADirectoryError):
        return "INVALID_PARAMETER_VALUE"
    return "INTERNAL_ERROR"


# -- MLflow REST API and requests/urllib3 (the proxied-artifact HTTP client, artifact_fs/http.py) --------
# The rows are in ERROR_CODES (MLflow's ``error_code``) and EXCEPTION_NAMES (requests / urllib3); what
# needs more than a name lookup is below: the failure a requests error wraps, certificate failures,
# and the messages that name the variable to change.

HTTP_NOT_IMPLEMENTED = 501
HTTP_SERVER_ERROR = 500


def is_certificate_failure(exc: BaseException) -> bool:
    """A certificate the client does not trust: it fails the same way on every attempt."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return False


def transport_rule(exc: BaseException) -> Rule | None:
    """requests/urllib3: the row of the failure a ``MaxRetryError`` wraps (``requests.ConnectionError``
    wraps a read timeout after urllib3's retries), azure-core: of its ``inner_exception``; a
    certificate failure is never retryable."""
    wrapped = exc.args[0] if exc.args else None
    reason = getattr(wrapped, "reason", None) if isinstance(wrapped, BaseException) else None
    reason = reason if isinstance(reason, BaseException) else getattr(exc, "reason", None)
    if not isinstance(reason, BaseException):  # azure-core keeps the transport's own failure here
        reason = getattr(exc, "inner_exception", None)
    if not isinstance(reason, BaseException) or reason is exc:
        return None
    if is_certificate_failure(reason):
        return Rule(ConnectionError, False)
    return rule_for(reason)


def _is_tls_failure(exc: BaseException) -> bool:
    return any(klass.__name__ == "SSLError" for klass in type(exc).__mro__) or is_certificate_failure(exc)


def translate_transport(exc: BaseException, url: str, path: str | None = None) -> OSError:
    """A requests/urllib3 transport failure as a builtin error whose message says what to change.

    The URL is shown redacted; timeouts name ``MLFLOW_HTTP_REQUEST_TIMEOUT``, TLS failures the
    certificate variables.
    """
    if isinstance(exc, OSError) and _is_builtin_like(exc):
        return exc
    klass = error_class(exc)
    retryable = is_retryable(exc)
    shown = uris.redact(url)
    if _is_tls_failure(exc):
        klass, retryable = ConnectionError, retryable and not is_certificate_failure(exc)
        message = (
            f"TLS verification failed for {shown} ({exc}); set MLFLOW_TRACKING_SERVER_CERT_PATH to the "
            "server's CA bundle (or MLFLOW_TRACKING_INSECURE_TLS=true to skip verification)"
        )
    elif issubclass(klass, TimeoutError):
        message = (
            f"request to {shown} timed out ({exc}); raise MLFLOW_HTTP_REQUEST_TIMEOUT (seconds) if the "
            "server is slow, or check that it is reachable"
        )
    elif issubclass(klass, ConnectionError):
        message = f"cannot reach {shown}: {exc}"
    else:
        return translate(exc, path)
    translated = klass(_ERRNO_FOR.get(klass, errno.EIO), message)
    if path is not None:
        translated.filename = path
    translated.__cause__ = exc
    translated.retryable = retryable  # type: ignore[union-attr]
    return translated


@contextlib.contextmanager
def translating_transport(url: str, path: str | None = None) -> Iterator[None]:
    """:func:`translating` for one HTTP request: transport errors get :func:`translate_transport`'s hints."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        translated = translate_transport(exc, url, path)
        if translated is exc:
            raise
        raise translated from exc


def http_error(
    status: int,
    *,
    method: str,
    url: str,
    error_code: str | None = None,
    message: str = "",
    path: str | None = None,
) -> Exception:
    """The error for a failed HTTP response: MLflow's ``error_code`` row first, then the status row.

    A 501 is :class:`MultipartUnsupportedError` (MLflow's servers answer it when the store cannot
    presign, and clients fall back). The error carries ``status_code``, ``error_code`` and
    ``retryable``; the URL in the message is redacted.
    """
    rule = ERROR_CODES.get(error_code) if error_code else None
    if rule is None and status == HTTP_NOT_IMPLEMENTED:
        rule = Rule(MultipartUnsupportedError, False)  # type: ignore[arg-type]
    if rule is None:
        rule = HTTP_STATUSES.get(status) or Rule(OSError, status >= HTTP_SERVER_ERROR)
    text = f"{method} {uris.redact(url.split('?', 1)[0])} failed with HTTP {status}"
    text += f" {error_code}: {message}" if error_code else f": {message}"
    klass: type[Exception] = rule.error
    if issubclass(klass, OSError):
        error: Exception = klass(_ERRNO_FOR.get(_builtin_ancestor(klass), errno.EIO), text)
        if path is not None:
            error.filename = path  # type: ignore[attr-defined]
    else:
        error = klass(text)
    error.status_code = status  # type: ignore[attr-defined]
    error.error_code = error_code  # type: ignore[attr-defined]
    error.retryable = rule.retryable  # type: ignore[attr-defined]
    return error


# -- HDFS (hdfs-native, libhdfs) ---------------------------------------------------------------------
# The Java exception names a NameNode returns are rows of ERROR_CODES. hdfs-native raises other remote
# exceptions as RuntimeError('RPCError("<java class>", "<message>")'), and builtin errors whose text is
# the NameNode's message plus its Java stack trace, or Rust's "<reason> (os error N)"; what is below
# reads that text.
HDFS_RPC_ERROR = re.compile(r'^RPCError\("(?P<java>[\w.$]+)", "(?P<message>.*)', re.DOTALL)
JAVA_STACK_TRACE = re.compile(r"(\n|\\n)\s*(\t|\\t)at .*", re.DOTALL)
OS_ERROR_NUMBER = re.compile(r"\(os error (?P<number>\d+)\)")
HDFS_MESSAGES: dict[tuple[type[OSError], str], Rule] = {
    # Reading a directory: the NameNode's FileNotFoundException "Path is not a file: /dir".
    (FileNotFoundError, "Path is not a file"): Rule(IsADirectoryError, False),
}
"""(builtin class the client raised, text it starts with) -> what it means."""


def without_java_stack_trace(text: str) -> str:
    """The message without the Java stack trace a NameNode appends (raw or escaped)."""
    return JAVA_STACK_TRACE.sub("", text).strip()


def hdfs_remote_exception(exc: BaseException) -> tuple[str, str] | None:
    """``(Java simple class name, message)`` of an hdfs-native ``RPCError``, else None."""
    match = HDFS_RPC_ERROR.match(str(exc)) if isinstance(exc, RuntimeError) else None
    if match is None:
        return None
    message = without_java_stack_trace(match.group("message")).removesuffix('")')
    return match.group("java").rsplit(".", 1)[-1], message


def hdfs_rpc_rule(exc: BaseException) -> Rule | None:
    """The row for a remote exception hdfs-native reports as text; unknown ones are permanent."""
    remote = hdfs_remote_exception(exc)
    if remote is None:
        return None
    return ERROR_CODES.get(remote[0], Rule(OSError, False))


def describe_hdfs_rpc(exc: BaseException) -> str:
    """``<JavaException>: <message>`` for an hdfs-native ``RPCError``; empty for anything else."""
    remote = hdfs_remote_exception(exc)
    return f"{remote[0]}: {remote[1]}" if remote else ""


def hdfs_refined_builtin(exc: OSError, path: str | None) -> OSError | None:
    """A builtin error whose text says more than its class (HDFS's Java text), as that class.

    None when there is nothing to refine: the error is fsspec's contract already.
    """
    if type(exc).__module__ != "builtins":
        return None
    text = exc.strerror or str(exc)
    message = without_java_stack_trace(text)
    rule = next(
        (
            rule
            for (raised, start), rule in HDFS_MESSAGES.items()
            if type(exc) is raised and message.startswith(start)
        ),
        None,
    )
    number = OS_ERROR_NUMBER.search(message) if exc.errno is None else None
    if rule is None and number is None and message == text:
        return None
    if rule is not None:
        refined = rule.error(rule.errno or _ERRNO_FOR.get(rule.error, errno.EIO), message)
    elif number is not None:
        refined = OSError(int(number.group("number")), message)  # the builtin subclass for that errno
    else:
        refined = type(exc)(exc.errno or _ERRNO_FOR.get(type(exc), errno.EIO), message)
    if path is not None:
        refined.filename = path
    refined.__cause__ = exc
    return refined


# -- HDFS Kerberos (hdfs-native's GSSAPI errors; the ticket cache checks are backends/hdfs/kerberos.py) --
# hdfs-native raises RuntimeError('GSSAPIError(<major codes>, <minor>, "<text>")') when the cluster
# wants Kerberos and the client has no usable ticket (no cache, an expired one, no TGT).
HDFS_GSSAPI_ERROR = re.compile(r'^GSSAPIError\(.*"(?P<text>[^"]*)"\)$', re.DOTALL)


def hdfs_kerberos_rule(exc: BaseException) -> Rule | None:
    """A refused Kerberos login is a permanent ``PermissionError``."""
    if isinstance(exc, RuntimeError) and HDFS_GSSAPI_ERROR.match(str(exc)):
        return Rule(PermissionError, False)
    return None


def describe_hdfs_runtime_error(exc: BaseException) -> str:
    """hdfs-native's RuntimeErrors: a GSSAPI failure says what to do; an RPCError names its class."""
    match = HDFS_GSSAPI_ERROR.match(str(exc)) if isinstance(exc, RuntimeError) else None
    if match is None:
        return describe_hdfs_rpc(exc)
    if "Clock skew too great" in match.group("text"):
        return (
            "Kerberos: this machine's clock differs from the KDC's or the NameNode's by more than the "
            f"realm allows ({match.group('text')}); synchronise the clocks (NTP)"
        )
    return (
        f"Kerberos: the HDFS cluster requires Kerberos and no usable ticket was found "
        f"({match.group('text')}); run kinit and set MLFLOW_KERBEROS_TICKET_CACHE to the ticket cache"
    )


# -- FTP and SFTP (ftplib, ssl, asyncssh) --------------------------------------------------------
FTP_TRANSIENT_REPLIES = frozenset({"421", "425", "426", "450", "451", "452"})
"""FTP replies that mean "not now" (service closing, no data connection, transfer aborted, file
busy, local error, no space yet: RFC 959's 4xx); every 5xx reply is permanent."""
_FTP_REFUSAL_WORDS = ("ssl", "tls", "permission", "privilege", "denied")


def ftp_reply_rule(exc: BaseException) -> Rule | None:
    """The row for an ftplib reply error, from its code and text (``550`` alone is any refusal)."""
    if type(exc).__module__ != "ftplib":
        return None
    reply = str(exc)
    code, text = reply[:3], reply.lower()
    retryable = code in FTP_TRANSIENT_REPLIES
    if code in {"530", "532"} or any(word in text for word in _FTP_REFUSAL_WORDS):
        return Rule(PermissionError, retryable)
    if "not empty" in text:
        return Rule(OSError, retryable, errno.ENOTEMPTY)
    if "exist" in text and "not" not in text:
        return Rule(FileExistsError, retryable)
    if code == "550" or "no such" in text or "not found" in text:
        return Rule(FileNotFoundError, retryable)
    if code == "421":
        return Rule(ConnectionError, True, errno.ECONNRESET)
    return Rule(OSError, retryable)


def _untrusted_certificate(exc: BaseException) -> str:
    reason = getattr(exc, "verify_message", None) or exc
    return (
        f"the server's TLS certificate is not trusted ({reason}); pass ca_file= "
        "(ARTIFACT_FS_FTP_TLS_CA_FILE) or, only for testing, tls_verify=False"
    )


def _untrusted_host_key(exc: BaseException) -> str:
    return (
        f"the SSH host key the server offered is not trusted ({getattr(exc, 'reason', exc)}); after "
        "checking its fingerprint, add it to known_hosts (ssh-keyscan -p <port> <host> >> "
        "~/.ssh/known_hosts) or pass known_hosts=<file>"
    )


EXCEPTION_DETAILS: dict[str, Callable[[BaseException], str]] = {
    "EOFError": lambda exc: "the server closed the connection",
    "SSLCertVerificationError": _untrusted_certificate,
    "HostKeyNotVerifiable": _untrusted_host_key,
    "RuntimeError": describe_hdfs_runtime_error,  # hdfs-native's RPCError and GSSAPIError
}
"""Exception class name -> a message that says what to do, where the library's own says too little."""

CLASSIFIERS: tuple[Callable[[BaseException], Rule | None], ...] = (
    ftp_reply_rule,
    hdfs_rpc_rule,
    hdfs_kerberos_rule,
)
"""Protocols whose errors must be parsed (a reply code inside the message) before the tables apply."""


def _described(exc: BaseException) -> str | None:
    for klass in type(exc).__mro__:
        describe = EXCEPTION_DETAILS.get(klass.__name__)
        if describe is not None:
            return describe(exc)
    return None


# -- Object stores (S3, GCS, Azure: artifact_fs/backends/object_store.py, s3.py, gcs.py, azure.py) ------
CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
"""S3 codes meaning the key or signature itself was refused (not an action denied to a valid identity)."""
HTTP_RANGE_NOT_SATISFIABLE = 416


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors behind it (an SDK error under the builtin one fsspec raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_invalid_range(exc: BaseException) -> bool:
    """The store refused a byte range at or past the end (S3 / Azure ``InvalidRange``, GCS's 416)."""
    return any(
        _error_code(current) == "InvalidRange" or _http_status(current) == HTTP_RANGE_NOT_SATISFIABLE
        for current in _causes(exc)
        if not _is_builtin_like(current)
    )


def is_credential_error(exc: BaseException) -> bool:
    """The credentials themselves were refused or missing (botocore's ``*CredentialsError``), so the
    message should say where they came from."""
    return any(
        _error_code(current) in CREDENTIAL_CODES or type(current).__name__.endswith("CredentialsError")
        for current in _causes(exc)
    )


def reporting_timeouts(method: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking fsspec method that raises the loop's ``TimeoutError`` itself.

    fsspec's ``sync`` replaces any ``TimeoutError`` from the loop with an empty ``FSTimeoutError``
    (the original only as its cause): not a builtin error, and it hides the path and the variable.
    A timeout of ``sync``'s own (no such cause) stays as it is.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except FSTimeoutError as exc:
            if type(exc.__cause__) is not TimeoutError:
                raise
            raise exc.__cause__ from exc.__cause__.__cause__

    return wrapper


def report_timeouts(fs: Any) -> None:
    """Make every blocking twin of ``fs``'s coroutines raise the loop's ``TimeoutError`` itself
    (SFTP, and the object stores through ``ObjectStoreFileSystem``).

    Call from ``__init__``: fsspec mirrors the blocking methods after it, and leaves alone the
    ones already set on the instance.
    """
    mirror_sync_methods(fs)
    for name in dir(type(fs)):
        if name[:1] != "_" or name[1:2] == "_" or not inspect.iscoroutinefunction(getattr(type(fs), name)):
            continue
        blocking = getattr(fs, name[1:], None)
        if callable(blocking):
            setattr(fs, name[1:], reporting_timeouts(blocking))
