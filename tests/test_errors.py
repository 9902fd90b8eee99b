"""One translation table: SDK errors become builtin OSErrors with the cause kept."""

from __future__ import annotations

import errno

import pytest

from artifact_fs.errors import (
    InvalidArtifactPathError,
    MultipartUnsupportedError,
    mlflow_error_code,
    translate,
    translate_errors,
    translating,
)


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, FileNotFoundError),
        ("NoSuchBucket", 404, FileNotFoundError),
        ("404", 404, FileNotFoundError),
        ("AccessDenied", 403, PermissionError),
        ("InvalidAccessKeyId", 403, PermissionError),
        ("SignatureDoesNotMatch", 403, PermissionError),
        ("PreconditionFailed", 412, FileExistsError),
        ("SomethingNew", 404, FileNotFoundError),
        ("SomethingNew", 500, OSError),
    ],
)
def test_botocore_client_errors(code: str, status: int, expected: type[OSError]) -> None:
    original = _client_error(code, status)
    translated = translate(original, "bucket/key")
    assert type(translated) is expected
    assert translated.__cause__ is original
    assert translated.filename == "bucket/key"
    assert "bucket/key" in str(translated)


def test_azure_errors_by_class_and_code() -> None:
    from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError

    assert type(translate(ResourceNotFoundError("gone"))) is FileNotFoundError
    assert type(translate(ResourceExistsError("there"))) is FileExistsError
    assert type(translate(ClientAuthenticationError("no"))) is PermissionError


def test_google_api_errors() -> None:
    from google.api_core import exceptions

    assert type(translate(exceptions.NotFound("x"))) is FileNotFoundError
    assert type(translate(exceptions.Forbidden("x"))) is PermissionError
    assert type(translate(exceptions.PreconditionFailed("x"))) is FileExistsError


def test_requests_errors() -> None:
    import requests

    assert type(translate(requests.ConnectTimeout("t"))) is TimeoutError
    assert type(translate(requests.ConnectionError("refused"))) is ConnectionError
    response = requests.Response()
    response.status_code = 404
    assert type(translate(requests.HTTPError("nf", response=response))) is FileNotFoundError


def test_errno_is_set_for_known_classes() -> None:
    assert translate(_client_error("NoSuchKey", 404)).errno == errno.ENOENT
    assert translate(_client_error("AccessDenied", 403)).errno == errno.EACCES


def test_builtin_oserrors_pass_through_unchanged() -> None:
    original = FileNotFoundError(errno.ENOENT, "x")
    assert translate(original) is original


def test_translating_context_keeps_value_errors_and_translates_the_rest() -> None:
    with pytest.raises(ValueError), translating("p"):
        raise ValueError("bad input stays bad input")
    with pytest.raises(FileNotFoundError) as info, translating("p"):
        raise _client_error("NoSuchKey", 404)
    assert info.value.__cause__ is not None


def test_decorator_translates_sync_and_async_methods() -> None:
    import asyncio

    class Store:
        @translate_errors
        def read(self, path: str) -> bytes:
            raise _client_error("AccessDenied", 403)

        @translate_errors
        async def aread(self, path: str) -> bytes:
            raise _client_error("NoSuchBucket", 404)

    with pytest.raises(PermissionError, match="b/k"):
        Store().read("b/k")
    with pytest.raises(FileNotFoundError, match="b/k"):
        asyncio.run(Store().aread("b/k"))


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidArtifactPathError("../x", "'..' segments are not allowed"), "INVALID_PARAMETER_VALUE"),
        (FileNotFoundError("x"), "RESOURCE_DOES_NOT_EXIST"),
        (PermissionError("x"), "PERMISSION_DENIED"),
        (MultipartUnsupportedError("no"), "NOT_IMPLEMENTED"),
        (ValueError("x"), "INVALID_PARAMETER_VALUE"),
        (IsADirectoryError("x"), "INVALID_PARAMETER_VALUE"),
        (RuntimeError("x"), "INTERNAL_ERROR"),
    ],
)
def test_mlflow_error_codes(exc: BaseException, code: str) -> None:
    assert mlflow_error_code(exc) == code


def test_a_socket_timeout_inside_aiohttp_or_azure_core_is_a_timeout_error() -> None:
    """A connection that timed out (``ETIMEDOUT``: a stalled upload's ``TCP_USER_TIMEOUT``) is a
    ``TimeoutError``, as aiohttp raises it and as azure-core wraps it, not a refused connection."""
    import aiohttp
    from azure.core.exceptions import ServiceRequestError

    raw = aiohttp.ClientOSError(errno.ETIMEDOUT, "Connection timed out")
    direct = translate(raw, "b/up.bin")
    assert type(direct) is TimeoutError and direct.errno == errno.ETIMEDOUT and direct.__cause__ is raw
    wrapped = ServiceRequestError("[Errno 110] Connection timed out", error=raw)
    assert type(translate(wrapped, "b/up.bin")) is TimeoutError
    refused = ServiceRequestError("refused", error=aiohttp.ClientOSError(errno.ECONNREFUSED, "refused"))
    assert type(translate(refused, "b/up.bin")) is ConnectionError
