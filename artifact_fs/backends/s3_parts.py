"""Multipart writes with several parts in flight, for files written piece by piece (the server's PUTs).

s3fs's ``S3File`` uploads each full part and waits for it before taking more bytes (its
``_upload_chunk`` says "TODO: concurrent here"), so a proxied upload to S3 ran one part at a time.
:class:`ConcurrentParts` hands each full part to the filesystem's event loop as it fills and blocks
the writer only when :func:`parts_in_flight` parts are in flight: memory stays at that many parts and
the parts still complete in order. One-shot PUTs (small files) and appends keep s3fs's own path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
from typing import Any

from fsspec.asyn import sync

from artifact_fs.backends import s3_upload

Pending = list[tuple[int, "concurrent.futures.Future[dict[str, Any]]"]]
"""Parts in flight, oldest first: ``(part number, future of its entry for the completion)``."""


def parts_in_flight(max_concurrency: int) -> int:
    """Parts a streamed write keeps in flight: half the filesystem's ``max_concurrency`` (at least 2).

    A streamed write holds each part in memory until S3 has it; ``put_file`` re-reads its parts
    from disk. Measured on the server (10 MiB parts, a 128 MiB PUT to S3): peak RSS +46 MiB one
    part at a time, +106 MiB at 4, +144 MiB at 8; half keeps S3 receiving parts back to back at
    about twice the memory of a sequential upload.
    """
    return max(2, max_concurrency // 2)


class ConcurrentParts:
    """A mixin for ``s3fs.S3File``: ``_upload_chunk`` with :func:`parts_in_flight` parts in flight."""

    fs: Any
    buffer: Any
    blocksize: int
    autocommit: bool
    append_block: bool
    mpu: Any
    parts: list[dict[str, Any]]
    offset: int
    path: str
    s3_additional_kwargs: dict[str, Any]

    def write(self, data: Any) -> int:
        """fsspec's ``write``, with a piece that would take the buffer past one part split where the
        part ends: the buffer then holds exactly one part when it is sent, which
        :meth:`_upload_chunk` hands over without copying it."""
        buffer = self.buffer
        if buffer is None or self.append_block or len(data) <= self.blocksize - buffer.tell():
            return int(super().write(data))  # type: ignore[misc]
        view = memoryview(data).cast("B")
        written = 0
        while view:
            room = self.blocksize - self.buffer.tell()
            piece, view = (view[:room], view[room:]) if room > 0 else (view, view[:0])
            written += int(super().write(piece))  # type: ignore[misc]
        return written

    def _upload_chunk(self, final: bool = False) -> bool:
        one_shot = self.autocommit and final and self.tell() < self.blocksize  # type: ignore[attr-defined]
        if self.append_block or one_shot or not self.mpu:
            return bool(super()._upload_chunk(final=final))  # type: ignore[misc]
        data = self.buffer.getvalue()  # BytesIO's own bytes, not a copy (reading them out was one)
        size = self.blocksize
        end = len(data) if final else len(data) - len(data) % size
        for start in range(0, end, size):  # usually one part (see write): a whole-bytes slice is no copy
            self._submit_part(data[start : start + size])
        if self.autocommit and final:
            self._collect_parts(0)
            self.commit()  # type: ignore[attr-defined]
        else:
            self.offset += end
            self.buffer = io.BytesIO(data[end:])
            self.buffer.seek(0, 2)
        return False  # fsspec's flush must not clear the buffer: the rest of it is kept above

    def commit(self) -> None:
        self._collect_parts(0)
        super().commit()  # type: ignore[misc]

    def _call_s3(self, method: str, *kwarglist: Any, **kwargs: Any) -> Any:
        """s3fs's calls; the multipart upload this class sends the parts of is created with the
        checksum algorithm they carry (:func:`~.s3_upload.part_algorithm`)."""
        if method == "create_multipart_upload" and not self.append_block:
            algorithm = sync(self.fs.loop, s3_upload.part_algorithm, self.fs, self.s3_additional_kwargs)
            self.__dict__["_part_algorithm"] = algorithm
            kwargs.update(s3_upload.creation_arguments(algorithm))
        return super()._call_s3(method, *kwarglist, **kwargs)  # type: ignore[misc]

    def _pending(self) -> Pending:
        pending: Pending = self.__dict__.setdefault("_parts_pending", [])
        return pending

    def _submit_part(self, data: bytes) -> None:
        if not data:
            return
        pending = self._pending()
        number = len(self.parts) + len(pending) + 1
        bucket, key, _ = self.fs.split_path(self.path)
        upload = s3_upload.send_part(
            self.fs,
            bucket,
            key,
            data,
            upload_id=self.mpu["UploadId"],
            number=number,
            algorithm=self.__dict__.get("_part_algorithm"),
            upload_arguments=self.s3_additional_kwargs,
        )
        pending.append((number, asyncio.run_coroutine_threadsafe(upload, self.fs.loop)))
        self._collect_parts(parts_in_flight(self.fs.max_concurrency) - 1)

    def _collect_parts(self, keep: int) -> None:
        """Wait for the oldest parts until at most ``keep`` are in flight; record them in order."""
        pending = self._pending()
        while len(pending) > keep:
            _, future = pending[0]
            sent = future.result()
            pending.pop(0)
            self.parts.append(sent)

    def drop_pending_parts(self) -> None:
        """Cancel the parts in flight and wait for them (before the upload is aborted)."""
        pending = self._pending()
        for _, future in pending:
            future.cancel()
        concurrent.futures.wait([future for _, future in pending])
        pending.clear()
