"""What the server sends back: MLflow's error JSON and status codes, and download headers.

Error bodies are MLflow's ``{"error_code": ..., "message": ...}`` with the status MLflow derives from
the code, so MLflow's clients (``augmented_raise_for_status``) read them unchanged. Download headers
follow MLflow's ``_send_artifact``: always an attachment, ``nosniff``, MLflow's MIME rules.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import re
import unicodedata
import urllib.parse

from starlette.responses import JSONResponse

from artifact_fs import errors

logger = logging.getLogger("artifact_fs.server")

MULTIPART_UNSUPPORTED_MESSAGE = "Multipart upload is not supported for the current artifact repository"
"""MLflow 3.17 clients fall back to a plain PUT only when a 501's message starts with this."""

# mlflow/utils/mime_type_utils.py get_text_extensions(): served as text/plain; whole-name matches
# for extension-less files (MLmodel, mlproject).
_TEXT_EXTENSIONS = (
    "txt log err cfg conf cnf cf ini properties prop hocon toml yaml yml xml json js py py3 csv tsv"
)
TEXT_EXTENSIONS = frozenset([*_TEXT_EXTENSIONS.split(), "md", "rst", "ipynb", "MLmodel", "mlproject"])
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token


class ArtifactServerError(Exception):
    """An error with an explicit MLflow error code (for cases no builtin exception names)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def error_response(error_code: str, message: str) -> JSONResponse:
    status = errors.MLFLOW_STATUS.get(error_code, 500)
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


def response_for_exception(exc: BaseException) -> JSONResponse:
    """MLflow's JSON error for ``exc``; internal errors are logged with their traceback."""
    if isinstance(exc, ArtifactServerError):
        return error_response(exc.error_code, str(exc))
    if isinstance(exc, errors.MultipartUnsupportedError):
        return error_response("NOT_IMPLEMENTED", f"{MULTIPART_UNSUPPORTED_MESSAGE}: {exc}")
    code = errors.mlflow_error_code(exc)
    if code == "INTERNAL_ERROR":
        logger.exception("internal error while serving an artifact request", exc_info=exc)
    # An OSError's strerror is its message without the "[Errno 13]" prefix.
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return error_response(code, message)


def guess_mime_type(file_name: str) -> str:
    """MLflow's ``_guess_mime_type``: text extensions as ``text/plain``, else ``mimetypes``, else binary."""
    name = posixpath.basename(file_name)
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _quote_header_value(value: str) -> str:
    if _TOKEN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, for non-ASCII names, RFC 5987 ``filename*``."""
    name = posixpath.basename(file_name)
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii") or "download"
        encoded = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
        return f"attachment; filename={_quote_header_value(fallback)}; filename*=UTF-8''{encoded}"
    return f"attachment; filename={_quote_header_value(name)}"
