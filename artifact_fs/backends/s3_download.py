"""S3 downloads: concurrent ranged GETs written in place into a preallocated file.

s3fs's ``_get_file`` opens a whole-object GET, abandons it when the object is large, and then fetches
ranges in batches that each wait for their slowest member. Here the first request is already the
first range: its ``Content-Range`` gives the object's size, the other ranges follow at once with at
most ``concurrency`` requests in flight (a semaphore, not batches), and each body is streamed to its
offset with ``os.pwrite``, so memory stays at ``concurrency x READ_SIZE``. The later ranges carry
``If-Match`` with the first response's ETag, so an object replaced mid-download fails the download
instead of mixing two versions. A small object is one GET; an empty one (S3 refuses a range on it)
one more.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from artifact_fs import errors, settings

READ_SIZE = settings.MIB
"""Bytes read from a response body at a time (and so held per request in flight)."""

GetObject = Callable[..., Awaitable[Mapping[str, Any]]]
"""``_call_s3("get_object", ...)`` bound to the object: keyword arguments are the request's extras."""


def object_size(response: Mapping[str, Any]) -> int:
    """The whole object's size: ``Content-Range: bytes a-b/SIZE`` of a 206, else the 200's length."""
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total != "*":
            return int(total)
    return int(response.get("ContentLength") or 0)


def _preallocated(lpath: str, size: int) -> int:
    """A descriptor of ``lpath``, created or truncated, already ``size`` bytes long."""
    descriptor = os.open(lpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        os.ftruncate(descriptor, size)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


async def _write_body(response: Mapping[str, Any], descriptor: int, offset: int, callback: Callback) -> int:
    """Stream one response body to ``offset`` of the open file; the number of bytes written."""
    body = response["Body"]
    written = 0
    try:
        while chunk := await body.read(READ_SIZE):
            os.pwrite(descriptor, chunk, offset + written)
            written += len(chunk)
            callback.relative_update(len(chunk))
    finally:
        body.close()
    return written


async def download(
    get_object: GetObject,
    lpath: str,
    *,
    part_size: int,
    concurrency: int,
    callback: Callback = DEFAULT_CALLBACK,
) -> Mapping[str, Any]:
    """Download one object to ``lpath`` with ranges of ``part_size`` bytes, ``concurrency`` at a time;
    returns the first answer (its headers and metadata describe the version downloaded).

    ``part_size=0`` downloads with one plain GET (``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``).
    """
    if part_size <= 0:
        first = await get_object()
    else:
        try:
            first = await get_object(Range=f"bytes=0-{part_size - 1}")
        except OSError as exc:
            if not errors.is_invalid_range(exc):
                raise
            first = await get_object()  # an empty object: S3 answers 416 to any range
    size = object_size(first)
    callback.set_size(size)
    etag = first.get("ETag")
    # Creating a file can take milliseconds (overlay and network filesystems): in a thread, so the
    # event loop keeps serving the other transfers meanwhile (as boto3's threads do).
    descriptor = await asyncio.to_thread(_preallocated, lpath, size)
    try:
        starts = range(part_size, size, part_size) if part_size > 0 else range(0)
        if not starts:
            await _write_body(first, descriptor, 0, callback)
            return first
        slots = asyncio.Semaphore(max(concurrency, 1) - 1 or 1)
        conditions = {"IfMatch": etag} if etag else {}

        async def fetch(start: int) -> int:
            async with slots:
                last = min(start + part_size, size) - 1
                response = await get_object(Range=f"bytes={start}-{last}", **conditions)
                return await _write_body(response, descriptor, start, callback)

        tasks = [
            asyncio.ensure_future(_write_body(first, descriptor, 0, callback)),
            *(asyncio.ensure_future(fetch(start)) for start in starts),
        ]
        try:
            written = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # none may write to the descriptor once it is closed
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if sum(written) != size:
            raise OSError(f"downloaded {sum(written)} of {size} bytes to {lpath!r}: the object changed size")
        return first
    finally:
        os.close(descriptor)


async def get_file(
    fs: Any, rpath: str, lpath: str, callback: Callback = DEFAULT_CALLBACK, *, version_id: str | None = None
) -> Mapping[str, Any] | None:
    """``S3FileSystem._get_file`` as :func:`download` (its first answer, ``None`` for a local
    directory, which is left as it is: s3fs's rule)."""
    if os.path.isdir(lpath):
        return None
    os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
    bucket, key, version = fs.split_path(rpath)
    fixed = {"Bucket": bucket, "Key": key, **fs.req_kw}
    if version_id or version:
        fixed["VersionId"] = version_id or version

    async def get_object(**request: Any) -> Mapping[str, Any]:
        response: Mapping[str, Any] = await fs._call_s3("get_object", **fixed, **request)
        return response

    return await download(
        get_object, lpath, part_size=fs.download_part_size, concurrency=fs.max_concurrency, callback=callback
    )
