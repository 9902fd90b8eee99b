"""Large S3 uploads from a local file: parts read in threads and sent as presigned ``upload_part``s.

s3fs's ``_put_file`` reads each part on the event loop, sends the parts in batches that each wait for
their slowest member, and aiobotocore hashes every part's body for its SigV4 signature on the event
loop too (0.3 s of the loop per 256 MiB). Here the multipart upload is created and completed through
the SDK (its retries, error table and upload arguments: Content-Type, metadata, ACLs), and in
between the parts go on a semaphore, at most ``max_concurrency`` in flight (so memory stays at that
many parts): each is read with ``os.pread`` in a thread, its checksum computed there too (the store
checks the bytes it received, as the signed payload hash made it check before: see
:func:`part_algorithm`), and sent as one presigned PUT (:mod:`.s3_small`). A part the presigned
path leaves (a store refusing presigned requests, an answer other than 2xx, a transport failure)
is sent again through the SDK. Any failure aborts the upload, so no part is left pending.

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

from artifact_fs import integrity

logger = logging.getLogger(__name__)

MAX_PARTS = 10_000
"""S3's limit on the parts of one upload."""


def part_size(size: int, chunk_size: int) -> int:
    """The part size for a ``size``-byte file: ``chunk_size``, or more if S3's part limit needs it."""
    return max(chunk_size, math.ceil(size / MAX_PARTS))


PartCheck = tuple[str, str]
"""A part's checksum as the ``upload_part`` parameter that carries it and its value:
``("ContentMD5", …)`` or ``("ChecksumCRC32C", …)`` (base64, as S3 takes both)."""


def content_md5(data: bytes) -> str:
    """A part's base64 ``Content-MD5`` (hashlib releases the GIL: compute it in a thread)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


async def part_algorithm(fs: Any, upload_arguments: Mapping[str, Any] | None = None) -> str | None:
    """The checksum algorithm a multipart upload is created with and its parts carry: ``"CRC32C"``
    where the filesystem's client sends S3's flexible checksums (its ``request_checksum_calculation``
    is ``when_supported``: botocore's default on AWS, and wherever ``AWS_REQUEST_CHECKSUM_CALCULATION``
    or ``config_kwargs`` say the store takes them), ``None`` for ``Content-MD5`` (the other S3-compatible
    stores, where every store checks it). CRC32C costs a fifth of MD5's CPU (0.07 s against 0.37 s per
    256 MiB here) and the store checks either. Upload arguments that choose an algorithm of their own
    (``ChecksumAlgorithm`` in ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``) keep theirs, and the parts their MD5."""
    chosen = {**getattr(fs, "upload_extra_args", {}), **(upload_arguments or {})}
    if "ChecksumAlgorithm" in chosen:
        return None
    client = await fs.set_session()
    calculation = getattr(client.meta.config, "request_checksum_calculation", None)
    return "CRC32C" if calculation == "when_supported" else None


def creation_arguments(algorithm: str | None) -> dict[str, str]:
    """What ``create_multipart_upload`` needs for parts checked with ``algorithm``."""
    return {"ChecksumAlgorithm": algorithm} if algorithm else {}


def part_check(data: bytes, algorithm: str | None) -> PartCheck:
    """``data``'s checksum for an upload created with ``algorithm`` (run it in a thread)."""
    if algorithm == "CRC32C":
        return "ChecksumCRC32C", base64.b64encode(integrity.digest_of(data, "crc32c").value).decode()
    return "ContentMD5", content_md5(data)


def _read_part(fd: int, offset: int, length: int, algorithm: str | None) -> tuple[bytes, PartCheck]:
    """A part's bytes and their :func:`part_check` (run in a thread)."""
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(
            f"the file changed while it was uploaded: {length} bytes expected at {offset}, read {len(data)}"
        )
    return data, part_check(data, algorithm)


async def send_part(
    fs: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    upload_id: str,
    number: int,
    algorithm: str | None = None,
    check: PartCheck | None = None,
    upload_arguments: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one part of a multipart upload; its entry for ``complete_multipart_upload`` (number,
    ETag, and its flexible checksum, if any). A presigned PUT (:mod:`.s3_small`) first, the SDK
    (and its retries) for what that leaves, and always where ``upload_arguments`` (SSE-C keys,
    request payer) must ride with the part. ``check``: the part's :func:`part_check` for the
    upload's ``algorithm``, computed in a thread when not given."""
    if check is None:  # in a thread: the loop goes on meanwhile, and so does the part's writer
        check = await asyncio.get_running_loop().run_in_executor(None, part_check, data, algorithm)
    name, value = check
    carried = {name: value} if name.startswith("Checksum") else {}
    if not upload_arguments:
        etag = await fs.small.upload_part(bucket, key, data, upload_id=upload_id, number=number, check=check)
        if etag is not None:
            return {"PartNumber": number, "ETag": etag, **carried}
    answer = await fs._call_s3(
        "upload_part",
        dict(upload_arguments or {}),
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        PartNumber=number,
        Body=data,
        **{name: value},
    )
    checksums = {name: value for name, value in answer.items() if name.startswith("Checksum")}
    return {"PartNumber": number, "ETag": answer["ETag"], **carried, **checksums}


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
        algorithm = await part_algorithm(fs, upload_arguments)
        created = await fs._call_s3(
            "create_multipart_upload",
            Bucket=bucket,
            Key=key,
            **upload_arguments,
            **creation_arguments(algorithm),
        )
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
                algorithm=algorithm,
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
    algorithm: str | None,
    concurrency: int,
    callback: Callback,
) -> list[dict[str, Any]]:
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def send(number: int, offset: int) -> dict[str, Any]:
        async with slots:
            length = min(part, size - offset)
            data, check = await loop.run_in_executor(None, _read_part, fd, offset, length, algorithm)
            sent = await send_part(fs, bucket, key, data, upload_id=upload_id, number=number, check=check)
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
