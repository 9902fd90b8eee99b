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
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, ParamSpec, TypeVar

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
    "InvalidBucketName": Rule(ValueError, False),
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
    "PathIsNotEmptyDirectoryException": Rule(OSError, False),
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
    "ConnectionError": Rule(ConnectionError, True),  # requests
    "ConnectTimeout": Rule(TimeoutError, True),  # requests
    "ReadTimeout": Rule(TimeoutError, True),  # requests
    "Timeout": Rule(TimeoutError, True),  # requests
    "ClientConnectorError": Rule(ConnectionError, True),  # aiohttp
    "ServerTimeoutError": Rule(TimeoutError, True),  # aiohttp
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
    return type(exc).__module__ in {"builtins", __name__}


def _builtin_ancestor(klass: type[OSError]) -> type[OSError]:
    for ancestor in klass.__mro__:
        if ancestor.__module__ == "builtins" and issubclass(ancestor, OSError):
            return ancestor
    return OSError


def rule_for(exc: BaseException) -> Rule | None:
    """The table's row for a foreign exception: by provider code, SDK class name, then HTTP status."""
    code = _error_code(exc)
    if code is not None and code in ERROR_CODES and issubclass(ERROR_CODES[code].error, OSError):
        return ERROR_CODES[code]
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
        rule = None if _is_builtin_like(current) else rule_for(current)
        if rule is not None:
            return rule.retryable
        if isinstance(current, TRANSIENT_CLASSES | EOFError):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate(exc: BaseException, path: str | None = None) -> OSError:
    """Turn any backend exception into a builtin ``OSError`` naming ``path``; the cause is kept.

    A builtin ``OSError`` (or one of ours) is returned unchanged: it is fsspec's contract already.
    A library's own ``OSError`` subclass (``requests.ConnectTimeout``) becomes its builtin meaning.
    """
    if isinstance(exc, OSError) and _is_builtin_like(exc):
        return exc
    klass = error_class(exc)
    code = _error_code(exc)
    detail = f"{code}: {exc}" if code and code not in str(exc) else str(exc) or type(exc).__name__
    message = f"{detail} (path: {path})" if path else detail
    translated = klass(_ERRNO_FOR.get(klass, errno.EIO), message)
    if path is not None:
        translated.filename = path
    translated.__cause__ = exc
    return translated


_PASS_THROUGH = (ValueError, TypeError, NotImplementedError, KeyError, AssertionError)


@contextlib.contextmanager
def translating(path: str | None = None) -> Iterator[None]:
    """Context manager: any non-builtin error raised inside becomes a translated ``OSError``."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        translated = translate(exc, path)
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
