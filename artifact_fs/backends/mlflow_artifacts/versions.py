"""One version per read of a proxied artifact: pinning, resuming, and bodies read as builtin errors.

A read remembers the version it started with (:class:`VersionPin`: the first answer's strong ETag
and size) and asks for later ranges with ``If-Match``, so it never mixes versions; a body cut
mid-way is a resumable ``OSError`` and :func:`resuming` retries just those within
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``..._BACKOFF_FACTOR`` (urllib3 already retried the request).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from typing import Any

import requests
import tenacity

from artifact_fs import errors
from artifact_fs import http as af_http
from artifact_fs.backends.mlflow_artifacts.core import STREAM_CHUNK
from artifact_fs.policy import TransferPolicy


def changed_error(path: str) -> OSError:
    """The artifact changed between two reads of one version (HTTP 412 on ``If-Match``)."""
    return OSError(errno.ESTALE, f"{path!r} changed while it was being read; read it again", path)


def iter_body(response: requests.Response, path: str | None = None) -> Iterator[bytes]:
    """A response's body in chunks; a connection cut mid-body is a builtin ``OSError`` marked resumable."""
    try:
        with af_http.translating_requests(response.url or "", path):
            yield from response.iter_content(STREAM_CHUNK)
    except OSError as exc:
        exc.resumable = errors.is_retryable(exc)  # type: ignore[attr-defined]
        raise


def resuming(policy: TransferPolicy) -> Any:
    """The policy's retries for bodies cut mid-way only (urllib3 already retried the requests)."""
    return policy.retrying().copy(
        retry=tenacity.retry_if_exception(lambda exc: getattr(exc, "resumable", False))
    )


class VersionPin:
    """The version a read started with: the first answer's strong ETag and the size it announced.

    Later requests send ``If-Match``; an answer of another size or ETag is :func:`changed_error`.
    """

    def __init__(self, size: int | None = None) -> None:
        self.etag: str | None = None
        self.size = size
        self._lock = threading.Lock()

    def check(self, response: requests.Response, path: str) -> None:
        etag = response.headers.get("ETag")
        total = _total_size(response)
        with self._lock:
            if self.size is not None and total is not None and total != self.size:
                raise changed_error(path)
            if self.etag is None and etag and not etag.startswith("W/"):
                self.etag = etag
            elif self.etag is not None and etag and etag != self.etag:
                raise changed_error(path)
            if self.size is None:
                self.size = total


def _total_size(response: requests.Response) -> int | None:
    """The whole artifact's size an answer announces (``Content-Range``'s total, or a 200's length)."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if response.status_code == 200 and length and length.isdigit() else None


class Resumable:
    """How far a download got, and the version (ETag) it is reading."""

    def __init__(self) -> None:
        self.started = False
        self.sized = False
        self.etag: str | None = None
        self.written = 0

    def start(self, response: requests.Response) -> None:
        self.started = True
        self.sized = "Content-Length" in response.headers
        etag = response.headers.get("ETag")
        self.etag = etag if etag and not etag.startswith("W/") else None

    def restart(self, local: Any) -> None:
        local.seek(0)
        local.truncate()
        self.written = 0


def read_between(
    response: requests.Response, offset: int, start: int, end: int, path: str | None = None
) -> bytes:
    """Bytes ``[start, end)`` from a stream that begins at ``offset``; stops reading at ``end``."""
    return b"".join(_pieces_between(response, offset, start, end, path))


def read_between_into(
    response: requests.Response, offset: int, start: int, view: memoryview, path: str | None = None
) -> int:
    """:func:`read_between` of ``len(view)`` bytes written into ``view``; the bytes written."""
    filled = 0
    for piece in _pieces_between(response, offset, start, start + len(view), path):
        view[filled : filled + len(piece)] = piece
        filled += len(piece)
    return filled


def _pieces_between(
    response: requests.Response, offset: int, start: int, end: int, path: str | None
) -> Iterator[bytes | memoryview]:
    if response.raw is None:
        if response.content:
            yield response.content[start - offset : end - offset]
        return
    position = offset
    for chunk in iter_body(response, path):
        chunk_end = position + len(chunk)
        if chunk_end > start:
            yield memoryview(chunk)[max(0, start - position) : end - position]
        position = chunk_end
        if position >= end:
            break
