"""Path rules for every path the artifact server receives, checked before any storage access.

Built on :mod:`artifact_fs.paths` (MLflow's ``validate_path_is_safe``, stricter on backslashes), plus
the rules only a server needs: the multipart-upload file name (``_get_multipart_upload_file_name``),
names reserved for in-flight uploads and digest records (:func:`artifact_fs.paths.is_hidden`), a
request path that must name a file, and limits on a name's and a path's length and depth (so no
store answers "File name too long" with a 500).
"""

from __future__ import annotations

import ntpath
import posixpath

from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.paths import DIGEST_DIRECTORY, RESERVED_PREFIX, is_hidden, validate_path_is_safe

MAX_NAME_BYTES = 255
"""The longest file name local filesystems take (``NAME_MAX``)."""
MAX_PATH_BYTES = 1024
"""S3, GCS and Azure keys are at most 1,024 bytes; one limit for every destination."""
RESERVED_MESSAGE = (
    f"names starting with {RESERVED_PREFIX!r} (uploads in progress) and {DIGEST_DIRECTORY!r} "
    "(digest records) are reserved"
)
MAX_DEPTH = 128
"""Nested directories; far beyond any model layout, far below what recursion or ``PATH_MAX`` allow."""


def _within_limits(raw: str, segments: list[str]) -> None:
    if len("/".join(segments).encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidArtifactPathError(raw[:100] + "...", f"paths are limited to {MAX_PATH_BYTES} bytes")
    if len(segments) > MAX_DEPTH:
        raise InvalidArtifactPathError(raw[:100] + "...", f"paths are limited to {MAX_DEPTH} levels")
    for segment in segments:
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise InvalidArtifactPathError(
                segment[:100] + "...", f"a name in a path is limited to {MAX_NAME_BYTES} bytes"
            )


def artifact_path(raw: str | None) -> str:
    """The safe, normalised artifact path for a request's path or ``?path=`` (``""`` for the root).

    Decodes to a fixpoint and refuses traversal, absolute and drive paths, backslashes, NUL and other
    control characters, ``#`` and ``;`` (raising :class:`InvalidArtifactPathError`, an HTTP 400).
    Empty and ``.`` segments are dropped, so ``a//b/./c`` and ``a/b/c`` name the same artifact.
    """
    if not raw:
        return ""
    if len(raw) > 4 * MAX_PATH_BYTES:  # decoding and splitting a huge input is work nobody needs
        raise InvalidArtifactPathError(raw[:100] + "...", f"paths are limited to {MAX_PATH_BYTES} bytes")
    decoded = validate_path_is_safe(raw)
    if ";" in decoded:
        # urlparse sees ';' parameters only on the last segment; '..;/' in an inner segment is the
        # CVE-2024-1593 smuggling form that servers and proxies in front of us may read as '..'.
        raise InvalidArtifactPathError(raw, "';' path parameters are not allowed")
    segments = [segment for segment in decoded.split("/") if segment not in {"", "."}]
    _within_limits(raw, segments)
    for segment in segments:
        if is_hidden(segment):
            raise InvalidArtifactPathError(raw, RESERVED_MESSAGE)
    return posixpath.join(*segments) if segments else ""


def file_path(raw: str) -> str:
    """An artifact path that must name a file (upload, download): not the root, not ending in ``/``."""
    if raw.endswith("/") or not artifact_path(raw):
        raise InvalidArtifactPathError(raw, "Artifact path must include a filename (cannot end with '/')")
    return artifact_path(raw)


def multipart_file_name(raw: object) -> str:
    """The file name of a multipart upload from the request body's ``path``.

    MLflow clients before 3.18 send the client's full local path (POSIX or Windows), so only its
    last component is used, validated, and taken again; ``""``, ``.`` and ``..`` are refused.
    """
    if not isinstance(raw, str) or not raw:
        raise InvalidArtifactPathError(str(raw), "the request body needs 'path', the file name")
    name = ntpath.basename(raw)  # splits on both '/' and '\\'
    name = posixpath.basename(validate_path_is_safe(name)) if name else ""
    if name:
        _within_limits(raw, [name])
    if name in {"", ".", ".."} or is_hidden(name) or ";" in name:
        raise InvalidArtifactPathError(raw, "the request body's 'path' does not name a file")
    return name
