"""What the server sends back on failure: MLflow's error JSON and status codes.

Error bodies are MLflow's ``{"error_code": ..., "message": ...}`` with the status MLflow derives from
the code, so MLflow's clients (``augmented_raise_for_status``) read them unchanged. Download headers
(MIME type, attachment disposition) come from :mod:`artifact_fs.content_headers`.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence

from starlette.responses import JSONResponse

from artifact_fs import errors, integrity

logger = logging.getLogger("artifact_fs.server")

MULTIPART_UNSUPPORTED_MESSAGE = "Multipart upload is not supported for the current artifact repository"
"""MLflow 3.17 clients fall back to a plain PUT only when a 501's message starts with this."""


class ArtifactServerError(Exception):
    """An error with an explicit MLflow error code (for cases no builtin exception names)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def body_mismatch(path: str, exc: integrity.DigestMismatchError) -> ArtifactServerError:
    """A PUT whose body does not match the digest its client sent: the client's 400, nothing stored.

    (A mismatch on a read is the store's damaged data, MLflow's INTERNAL_ERROR, as
    :func:`errors.mlflow_error_code` says for every ``EIO``.)
    """
    return ArtifactServerError(
        "INVALID_PARAMETER_VALUE",
        f"the body sent for {path!r} does not match its digest header: expected {exc.expected}, "
        f"received {exc.actual}; nothing was stored (send it again)",
    )


def error_response(error_code: str, message: str) -> JSONResponse:
    status = errors.MLFLOW_STATUS.get(error_code, 500)
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


def redact(message: str, locations: Sequence[str] = ()) -> str:
    """``message`` without the server's own paths: the destination's location becomes relative."""
    for location in sorted(locations, key=len, reverse=True):
        message = message.replace(location.rstrip("/") + "/", "").replace(location, ".")
    return message


def response_for_exception(exc: BaseException, private: Sequence[str] = ()) -> JSONResponse:
    """MLflow's JSON error for ``exc``; internal errors are logged with their traceback.

    ``private`` are locations on this machine (the destination's path) that messages must not show.
    A path too long or too deep for the store is the client's bad input (400), not a server error.
    """
    if isinstance(exc, RecursionError) or (isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG):
        return error_response("INVALID_PARAMETER_VALUE", "the artifact path is too long or too deep")
    if isinstance(exc, ArtifactServerError):
        return error_response(exc.error_code, redact(str(exc), private))
    if isinstance(exc, errors.MultipartUnsupportedError):
        return error_response("NOT_IMPLEMENTED", f"{MULTIPART_UNSUPPORTED_MESSAGE}: {exc}")
    code = errors.mlflow_error_code(exc)
    if code == "INTERNAL_ERROR":
        logger.exception("internal error while serving an artifact request", exc_info=exc)
    # An OSError's strerror is its message without the "[Errno 13]" prefix.
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return error_response(code, redact(message, private))
