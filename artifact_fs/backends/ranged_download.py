"""Large object downloads: concurrent ranged GETs written in place into a preallocated file.

The SDKs' own ``_get_file`` open a whole-object GET and abandon it for a large object (s3fs), or ask
the object's size first (gcsfs), and fetch ranges in batches that each wait for their slowest member.
Here the first request is already the first range: its ``Content-Range`` gives the object's size,
the other ranges follow at once with at most ``concurrency`` requests in flight (a semaphore, not
batches), and each body is streamed to its offset with ``os.pwrite``, so memory stays at
``concurrency x READ_SIZE``. The later ranges are pinned to the version the first answer named
(S3's ``If-Match`` ETag, a GCS generation), so an object replaced mid-download fails the download
instead of mixing two versions. A small object is one GET; an empty one (a store may refuse any
range of it) one more.

A store plugs in with one coroutine, ``get_object(Range=..., IfMatch=...)``, whose answer is shaped
as S3's: ``ContentRange``, ``ContentLength``, ``ETag`` (the version later ranges pass back as
``IfMatch``) and a ``Body`` with ``read(n)`` and ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from artifact_fs import errors, integrity, settings

READ_SIZE = settings.MIB
"""Bytes read from a response body at a time (and so held per request in flight)."""
RESUMES = 3
"""Times a range whose body was cut short asks again for its missing bytes."""

GetObject = Callable[..., Awaitable[Mapping[str, Any]]]
"""One ranged GET of the object: keyword arguments are ``Range`` and ``IfMatch`` (see the module)."""


def object_size(response: Mapping[str, Any]) -> int:
    """The whole object's size: ``Content-Range: bytes a-b/SIZE`` of a 206, else the 200's length."""
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total != "*":
            return int(total)
    return int(response.get("ContentLength") or 0)


class ResponseBody:
    """An aiohttp answer's body, read as botocore's ``StreamingBody`` is (``read(n)``, ``close()``)."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def read(self, size: int = -1) -> bytes:
        data: bytes = await self.response.content.read(size)
        return data

    async def readinto(self, view: memoryview) -> int:
        """The body into ``view`` as its pieces arrive, no joined copy; the bytes written (fewer
        when the body ends first, and never past ``view``: a longer body is a ``ValueError``)."""
        filled = 0
        content = self.response.content
        while piece := await content.readany():
            if filled + len(piece) > len(view):
                raise ValueError(f"the body runs past the {len(view)} bytes asked for")
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def close(self) -> None:
        self.response.release()  # a body not read to its end closes its connection


def prepared_target(lpath: str) -> bool:
    """Make ``lpath``'s parents; ``False`` when ``lpath`` is a local directory, which a download
    leaves as it is (s3fs's and gcsfs's rule)."""
    if os.path.isdir(lpath):
        return False
    os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
    return True


@contextlib.contextmanager
def discarding(lpath: str) -> Iterator[None]:
    """Remove what a failed download left at ``lpath`` (a partial or preallocated file)."""
    try:
        yield
    except BaseException:
        if os.path.isfile(lpath):
            os.remove(lpath)
        raise


def preallocated(lpath: str, size: int) -> int:
    """A descriptor of ``lpath``, created or truncated, already ``size`` bytes long."""
    descriptor = os.open(lpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        os.ftruncate(descriptor, size)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _check_start(response: Mapping[str, Any], start: int) -> None:
    """An answer to a range from byte ``start`` starts there: a store that ignored ``Range`` (a 200
    of the whole object) or answered another range would put other bytes at that offset."""
    content_range = response.get("ContentRange")
    if content_range:
        unit, _, span = str(content_range).partition(" ")
        if unit == "bytes" and span.partition("-")[0].strip() == str(start):
            return
    elif start == 0:
        return
    raise OSError(
        errno.EIO, f"the store answered a range from byte {start} with {content_range or 'the whole object'}"
    )


async def read_range(
    get_object: GetObject,
    span: tuple[int, int],
    *,
    conditions: Mapping[str, str],
    response: Mapping[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    """The body of the range ``span`` (its first and last byte), as it arrives; ``response`` is its
    GET when already sent. A body cut short (a reset, a stall) asks again for the bytes still
    missing, pinned to the same version, up to :data:`RESUMES` times: the SDKs retry a request, not
    a body already being read."""
    first, last = span
    done = 0
    for attempt in itertools.count():
        if response is None:
            response = await get_object(Range=f"bytes={first + done}-{last}", **conditions)
        body = response["Body"]
        try:
            _check_start(response, first + done)
            while piece := await body.read(READ_SIZE):
                done += len(piece)
                yield piece
            return
        except Exception as exc:
            resumable = conditions and first + done <= last and errors.is_retryable(exc)
            if attempt >= RESUMES or not resumable:
                raise
        finally:
            body.close()
        response = None


async def stream_version(
    get_object: GetObject, span: tuple[int, int], version: str | None, batch_size: int
) -> AsyncIterator[list[bytes]]:
    """The bytes ``span`` (first and last) of one version of an object (``version``: what
    ``IfMatch`` pins, the ETag or generation its open handle read) as one ranged GET, in batches of
    pieces as they arrived adding up to at least ``batch_size`` bytes (the last may be less): the
    server's streamed answers, where a batch crosses from the store's event loop to the server's
    in one hand-off, its pieces never joined (a copy of every byte). A version replaced meanwhile
    fails."""
    batch: list[bytes] = []
    held = 0
    conditions = {"IfMatch": version} if version else {}
    async for piece in read_range(get_object, span, conditions=conditions):
        batch.append(piece)
        held += len(piece)
        if held >= batch_size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


async def first_range(get_object: GetObject, length: int) -> Mapping[str, Any]:
    """The GET of an object's first ``length`` bytes (its answer gives the whole size); an empty
    object, which S3 and GCS answer 416 to any range of, is asked again without one."""
    try:
        return await get_object(Range=f"bytes=0-{length - 1}")
    except OSError as exc:
        if not errors.is_invalid_range(exc):
            raise
        return await get_object()


async def read_small(get_object: GetObject, limit: int) -> tuple[bytes, Mapping[str, Any]] | None:
    """A whole object of at most ``limit`` bytes in one GET (the first ``limit + 1`` bytes asked,
    so a larger one costs no more than that), with the answer whose headers name the version read;
    ``None`` when the object is larger. A body cut short resumes pinned to that version."""
    answer = await first_range(get_object, limit + 1)
    size = object_size(answer)
    if size > limit:
        answer["Body"].close()
        return None
    etag = answer.get("ETag")
    conditions = {"IfMatch": etag} if etag else {}
    pieces = [
        piece async for piece in read_range(get_object, (0, size - 1), conditions=conditions, response=answer)
    ]
    data = b"".join(pieces)
    if len(data) != size:
        raise OSError(errno.EIO, f"the store sent {len(data)} of the object's {size} bytes")
    return data, answer


async def write_range(
    response: Mapping[str, Any],
    get_object: GetObject,
    descriptor: int,
    span: tuple[int, int],
    *,
    conditions: Mapping[str, str],
    callback: Callback,
    received: integrity.ReceivedCrc32c | None = None,
) -> int:
    """Stream the body of the range ``span`` (:func:`read_range`) to its offset in the open file,
    hashed into ``received`` on the way; the number of bytes written."""
    written = 0
    async for piece in read_range(get_object, span, conditions=conditions, response=response):
        os.pwrite(descriptor, piece, span[0] + written)
        if received is not None:
            received.add(span[0], piece)
        written += len(piece)
        callback.relative_update(len(piece))
    return written


async def get_file(
    fs: Any,
    get_object: GetObject,
    lpath: str,
    callback: Callback = DEFAULT_CALLBACK,
    *,
    received: integrity.ReceivedCrc32c | None = None,
) -> Mapping[str, Any] | None:
    """A filesystem's ``_get_file`` as :func:`download`, with its ``download_part_size`` and
    ``max_concurrency``: the first answer, ``None`` for a local directory, which is left as it is
    (s3fs's and gcsfs's rule)."""
    if not prepared_target(lpath):
        return None
    return await download(
        get_object,
        lpath,
        part_size=fs.download_part_size,
        concurrency=fs.max_concurrency,
        callback=callback,
        received=received,
    )


async def download(
    get_object: GetObject,
    lpath: str,
    *,
    part_size: int,
    concurrency: int,
    callback: Callback = DEFAULT_CALLBACK,
    received: integrity.ReceivedCrc32c | None = None,
) -> Mapping[str, Any]:
    """Download one object to ``lpath`` with ranges of ``part_size`` bytes, ``concurrency`` at a time;
    returns the first answer (its headers and metadata describe the version downloaded).
    ``received`` hashes the bytes as they arrive.

    ``part_size=0`` downloads with one plain GET (``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``).
    """
    first = await (first_range(get_object, part_size) if part_size > 0 else get_object())
    size = object_size(first)
    callback.set_size(size)
    etag = first.get("ETag")
    # Creating a file can take milliseconds (overlay and network filesystems): in a thread, so the
    # event loop keeps serving the other transfers meanwhile (as boto3's threads do).
    try:
        descriptor = await asyncio.to_thread(preallocated, lpath, size)
    except BaseException:
        first["Body"].close()
        raise
    try:
        starts = range(part_size, size, part_size) if part_size > 0 else range(0)
        conditions = {"IfMatch": etag} if etag else {}
        head = (0, (min(part_size, size) if starts else size) - 1)

        def write(response: Mapping[str, Any], span: tuple[int, int]) -> Awaitable[int]:
            options = {"conditions": conditions, "callback": callback, "received": received}
            return write_range(response, get_object, descriptor, span, **options)

        if not starts:
            await write(first, head)
            return first
        slots = asyncio.Semaphore(max(concurrency, 1) - 1 or 1)

        async def fetch(start: int) -> int:
            async with slots:
                last = min(start + part_size, size) - 1
                response = await get_object(Range=f"bytes={start}-{last}", **conditions)
                return await write(response, (start, last))

        tasks = [
            asyncio.ensure_future(write(first, head)),
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
