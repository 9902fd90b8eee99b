"""GCS downloads: concurrent ranged media GETs into a preallocated file
(:mod:`artifact_fs.backends.ranged_download`), whose first answer also brings the object's metadata.

gcsfs's ``_get_file`` asks the object's metadata first (one more request per file) and fetches ranges
through ``_cat_file``, which drops the answers' headers. Here the first request is already the first
range: its headers give the size (``Content-Range``), the generation (``x-goog-generation``, which
pins the later ranges, so an object replaced mid-download fails it instead of mixing two versions)
and the custom metadata (``x-goog-meta-*``, where a record rides). A small object is one GET; an
empty one (GCS answers 416 to any range of it) one more. Each request is retried as gcsfs retries
its own; the headers are read before the body, which streams to its offset.
``GCSFileSystem._get_file`` is :func:`.ranged_download.get_file` with :func:`object_getter`.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any

from gcsfs.retry import retry_request, validate_response

from artifact_fs import errors
from artifact_fs.backends.ranged_download import GetObject, ResponseBody

GENERATION_HEADER = "x-goog-generation"
METADATA_HEADER_PREFIX = "x-goog-meta-"


async def _opened(fs: Any, url: str, headers: Mapping[str, str]) -> Any:
    """One media GET, answered with its headers and its body still unread (errors as gcsfs raises)."""
    await fs._set_session()
    response = await fs.session.get(
        url, params=fs._get_params({}), headers=fs._get_headers(headers), timeout=fs.requests_timeout
    )
    if response.status >= 400:
        try:
            validate_response(response.status, await response.read(), url)
        finally:
            response.release()
    return response


def object_getter(fs: Any, rpath: str) -> GetObject:
    """One media GET of the object ``rpath`` (``Range``; ``IfMatch``: a generation), retried as
    gcsfs retries its own, its answer shaped as S3's (:mod:`.ranged_download`)."""
    attempt = retry_request(retries=fs.retries)(_opened)

    async def get_object(Range: str | None = None, IfMatch: str | None = None) -> Mapping[str, Any]:
        try:
            with errors.translating(rpath):
                response = await attempt(
                    fs, fs.url(rpath, generation=IfMatch), {"Range": Range} if Range else {}
                )
        except FileNotFoundError as exc:
            if IfMatch is None:
                raise
            raise OSError(
                errno.EIO, f"replaced or deleted during its download (generation {IfMatch})", rpath
            ) from exc
        headers = response.headers
        return {
            "ContentRange": headers.get("Content-Range"),
            "ContentLength": headers.get("Content-Length"),
            "ETag": headers.get(GENERATION_HEADER),
            "Body": ResponseBody(response),
            "Headers": headers,
        }

    return get_object


def carried_metadata(answer: Mapping[str, Any] | None, key: str) -> str | None:
    """The custom metadata value ``key`` an answer of :func:`get_file` carries, if any."""
    if answer is None:
        return None
    value: str | None = answer["Headers"].get(METADATA_HEADER_PREFIX + key)
    return value
