"""Large S3 uploads from a local file: parts read in threads and sent as presigned ``upload_part``s.

s3fs's ``_put_file`` reads each part on the event loop, sends the parts in batches that each wait for
their slowest member, and aiobotocore hashes every part's body for its SigV4 signature on the event
loop too (0.3 s of the loop per 256 MiB). Here the multipart upload is created and completed through
the SDK (its retries, error table and upload arguments: Content-Type, metadata, ACLs), and in
between the parts go on a semaphore, at most ``max_concurrency`` in flight (so memory stays at that
many parts): each is read with ``os.pread`` in a thread, its ``Content-MD5`` computed there too (the
store checks the bytes it received, as the signed payload hash made it check before), and sent as
one presigned PUT (:mod:`.s3_small`). A part the presigned path leaves (a store refusing presigned
requests, an answer other than 2xx, a transport failure) is sent again through the SDK. Any failure
aborts the upload, so no part is left pending.

Parts are equal-sized (Cloudflare R2 and similar stores require it): the filesystem's part size,
grown where the file would otherwise need more than S3's 10,000 parts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

logger = logging.getLogger(__name__)

MAX_PARTS = 10_000
"""S3's limit on the parts of one upload."""


def part_size(size: int, chunk_size: int) -> int:
    """The part size for a ``size``-byte file: ``chunk_size``, or more if S3's part limit needs it."""
    return max(chunk_size, math.ceil(size / MAX_PARTS))


def content_md5(data: bytes) -> str:
    """A part's base64 ``Content-MD5`` (hashlib releases the GIL: compute it in a thread)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _read_part(fd: int, offset: int, length: int) -> tuple[bytes, str]:
    """A part's bytes and their :func:`content_md5` (run in a thread)."""
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(
            f"the file changed while it was uploaded: {length} bytes expected at {offset}, read {len(data)}"
        )
    return data, content_md5(data)


async def send_part(
    fs: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    upload_id: str,
    number: int,
    md5: str | None = None,
    upload_arguments: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one part of a multipart upload; its entry for ``complete_multipart_upload`` (number,
    ETag, and the checksum the SDK was asked for, if any). A presigned PUT (:mod:`.s3_small`)
    first, the SDK (and its retries) for what that leaves, and always where ``upload_arguments``
    (SSE-C keys, request payer, a checksum algorithm) must ride with the part. ``md5``: the part's
    :func:`content_md5`, computed in a thread when not given."""
    if md5 is None:  # in a thread: the loop goes on meanwhile, and so does the part's writer
        md5 = await asyncio.get_running_loop().run_in_executor(None, content_md5, data)
    if not upload_arguments:
        etag = await fs.small.upload_part(bucket, key, data, upload_id=upload_id, number=number, md5=md5)
        if etag is not None:
            return {"PartNumber": number, "ETag": etag}
    answer = await fs._call_s3(
        "upload_part",
        dict(upload_arguments or {}),
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        PartNumber=number,
        Body=data,
        ContentMD5=md5,
    )
    checksums = {name: value for name, value in answer.items() if name.startswith("Checksum")}
    return {"PartNumber": number, "ETag": answer["ETag"], **checksums}


async def put_file(
    fs: Any,
    lpath: str,
    rpath: str,
    size: int,
    upload_arguments: Mapping[str, Any],
    *,
    chunk_size: int,
    concurrency: int,
    callback: Callback = DEFAULT_CALLBACK,
) -> None:
    """Upload the ``size``-byte file ``lpath`` to ``rpath`` as a multipart upload (see the module)."""
    bucket, key = fs.object_path(rpath)
    part = part_size(size, chunk_size)
    callback.set_size(size)
    fd = os.open(lpath, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        created = await fs._call_s3("create_multipart_upload", Bucket=bucket, Key=key, **upload_arguments)
        upload_id = created["UploadId"]
        try:
            parts = await _send_parts(
                fs,
                fd,
                bucket,
                key,
                upload_id=upload_id,
                size=size,
                part=part,
                concurrency=concurrency,
                callback=callback,
            )
            await fs._call_s3(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await asyncio.shield(_abort(fs, bucket, key, upload_id))
            raise
    finally:
        os.close(fd)


async def _send_parts(
    fs: Any,
    fd: int,
    bucket: str,
    key: str,
    *,
    upload_id: str,
    size: int,
    part: int,
    concurrency: int,
    callback: Callback,
) -> list[dict[str, Any]]:
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def send(number: int, offset: int) -> dict[str, Any]:
        async with slots:
            data, md5 = await loop.run_in_executor(None, _read_part, fd, offset, min(part, size - offset))
            sent = await send_part(fs, bucket, key, data, upload_id=upload_id, number=number, md5=md5)
            callback.relative_update(len(data))
            return sent

    try:
        async with asyncio.TaskGroup() as group:  # the first failure cancels the parts still in flight
            tasks = [
                group.create_task(send(number, offset))
                for number, offset in enumerate(range(0, size, part), 1)
            ]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the failed part's own error (it cancelled the others)
    return [task.result() for task in tasks]


async def _abort(fs: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        await fs._abort_mpu(bucket, key, upload_id)
    except Exception as exc:  # noqa: BLE001 - the upload's own failure is the one to report
        logger.warning(
            "could not abort the multipart upload %s of s3://%s/%s: %s", upload_id, bucket, key, exc
        )
