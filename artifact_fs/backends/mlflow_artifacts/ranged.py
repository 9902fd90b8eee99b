"""Whole-file downloads through a proxy (or presigned URLs) as concurrent ranged GETs.

One streamed GET through ``artifact-fs serve`` is as fast as one stream of the store behind it; boto3
runs eight 16 MiB ranges at once. The download's first request already asks for the first range:
its ``206``'s ``Content-Range`` gives the file's size, and the other ranges follow at once on the
transfer pool, each streamed with ``os.pwrite`` to its offset of a preallocated file (memory stays
at a stream chunk per range in flight). Every later range carries ``If-Match`` with the first
answer's ETag (:class:`~.versions.VersionPin`), so a file replaced mid-download fails instead of
mixing two versions; a range cut mid-body asks again for what it lacks, within the policy's retries.
A file that fits the first range is one GET, as before. A server that ignores ``Range`` (MLflow's
proxy over a remote store: ``200``, chunked) is read by the caller as one stream, as before.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import requests

from artifact_fs import integrity
from artifact_fs.backends.mlflow_artifacts.versions import VersionPin, changed_error, iter_body, resuming
from artifact_fs.policy import TransferPolicy, download_part_size

OpenRange = Callable[[int, int, str | None], requests.Response]
"""``(start, end, etag)`` -> the open, streamed answer to ``Range: bytes=start-(end-1)`` + ``If-Match``."""


def range_size(storage_options: Mapping[str, Any], chunk_size: int) -> int:
    """``chunk_size`` when the caller chose it, else the policy's range size of large downloads."""
    environ = storage_options.get("environ")
    if storage_options.get("multipart_download_chunk_size"):
        return chunk_size
    return download_part_size(os.environ if environ is None else environ)


def empty_answer(answer: requests.Response) -> requests.Response:
    """No bytes, for a 416 (the range starts at or after the end). For an empty file that is the
    whole file: its length, version and digest come along, so a download needs no listing to tell
    it from a directory, and still checks it."""
    empty = requests.Response()
    empty.status_code, empty._content, empty._content_consumed = 200, b"", True  # type: ignore[attr-defined]
    if answer.headers.get("Content-Range", "").endswith("/0"):
        empty.headers["Content-Length"] = "0"
        for name in ("ETag", "Repr-Digest"):
            if name in answer.headers:
                empty.headers[name] = answer.headers[name]
    answer.close()
    return empty


def whole_size(response: requests.Response) -> int | None:
    """The file's size from a ``206``'s ``Content-Range: bytes a-b/SIZE``; None when it gives none."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code != 206 or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1]
    return int(total) if total.isdigit() else None


def can_continue(first: requests.Response, part_size: int) -> bool:
    """Whether the first ranged answer lets the rest come as pinned ranges: a ``206`` that starts at 0
    with the whole size, and (if more ranges are needed) a strong ETag to pin them to."""
    size = whole_size(first)
    if size is None or not first.headers.get("Content-Range", "").startswith("bytes 0-"):
        return False
    etag = first.headers.get("ETag") or ""
    return size <= part_size or (bool(etag) and not etag.startswith("W/"))


class RangedDownload:
    """One version of ``path`` into ``lpath`` from a first ranged answer, the other ranges on a pool.

    On any failure the partial local file is removed. The whole file is then checked against the
    first answer's ``Repr-Digest``: hashed as it arrives when it is one range, else read back from
    the page cache (CRC32C: 256 MiB in ~0.03 s).
    """

    def __init__(
        self,
        path: str,
        lpath: str,
        open_range: OpenRange,
        *,
        part_size: int,
        workers: int,
        policy: TransferPolicy,
        digests: bool,
        callback: Any = None,
    ) -> None:
        self.path, self.lpath, self.open_range = path, lpath, open_range
        self.part_size, self.workers, self.policy = part_size, max(workers, 1), policy
        self.digests, self.callback = digests, callback
        self.expected: integrity.Digest | None = None
        self.header: str | None = None
        self.etag: str | None = None
        self._hasher: integrity.Hasher | None = None
        self._received: integrity.ReceivedCrc32c | None = None
        self._failed = threading.Event()

    def run(self, first: requests.Response) -> None:
        """Write every range; raise (with the local file removed) if any range fails."""
        size = whole_size(first)
        if size is None:
            raise ValueError("the first answer must be a 206 with the whole size (see can_continue)")
        pin = VersionPin(size)
        pin.check(first, self.path)
        self.etag = pin.etag
        self.header = first.headers.get("Repr-Digest")
        self.expected = integrity.quick_digest(self.header) if self.digests else None
        starts = range(self.part_size, size, self.part_size)
        if self.expected is not None and not starts:
            self._hasher = integrity.Hasher(self.expected.algorithm)
        elif self.expected is not None and self.expected.algorithm == "crc32c":
            self._received = integrity.ReceivedCrc32c()  # each range hashed as it arrives
        if self.callback is not None:
            self.callback.set_size(size)
        descriptor = os.open(
            self.lpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666
        )
        try:
            try:
                os.ftruncate(descriptor, size)
                self._ranges(descriptor, first, pin, size, starts)
            finally:
                os.close(descriptor)
            self._check_whole()
        except BaseException:
            first.close()
            with contextlib.suppress(OSError):
                os.remove(self.lpath)
            raise

    def _ranges(
        self, descriptor: int, first: requests.Response, pin: VersionPin, size: int, starts: range
    ) -> None:
        if not starts:
            self._write_range(descriptor, pin, 0, size, first)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="mlflow-ranges") as pool:
            futures = [pool.submit(self._write_range, descriptor, pin, 0, self.part_size, first)]
            futures += [
                pool.submit(self._write_range, descriptor, pin, start, min(size, start + self.part_size))
                for start in starts
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((future.exception() for future in done if future.exception()), None)
            if failure is not None:
                self._failed.set()  # ranges in flight stop at their next chunk; queued ones never start
                for future in futures:
                    future.cancel()
                raise failure

    def _write_range(
        self, descriptor: int, pin: VersionPin, start: int, end: int, first: requests.Response | None = None
    ) -> None:
        """Bytes ``[start, end)`` to their offset; a body cut mid-way asks again for the rest."""
        written = 0
        for attempt in resuming(self.policy):
            with attempt:
                if self._failed.is_set():
                    return
                if first is not None:
                    response, first = first, None
                else:
                    response = self.open_range(start + written, end, pin.etag)
                with response:
                    if response.status_code != 206 or not response.headers.get(
                        "Content-Range", ""
                    ).startswith(f"bytes {start + written}-"):
                        raise changed_error(self.path)  # the server stopped honouring the range
                    pin.check(response, self.path)
                    for received in iter_body(response, self.path):
                        if self._failed.is_set():
                            return
                        written += self._write(descriptor, received[: end - start - written], start, written)
                        if written >= end - start:
                            break
                if written < end - start:
                    cut = OSError(f"the range {start}-{end - 1} of {self.path!r} ended after {written} bytes")
                    cut.resumable = True  # type: ignore[attr-defined]
                    raise cut

    def _write(self, descriptor: int, data: bytes, start: int, written: int) -> int:
        """``data`` at ``written`` bytes into the range from ``start``, hashed on the way."""
        os.pwrite(descriptor, data, start + written)
        if self._hasher is not None:
            self._hasher.update(data)
        if self._received is not None:
            self._received.add(start, data)
        if self.callback is not None:
            self.callback.relative_update(len(data))
        return len(data)

    def _check_whole(self) -> None:
        if self.expected is None:
            return
        if self._hasher is not None:
            integrity.check(self.path, self.expected, self._hasher.digest())
        elif self._received is not None:
            integrity.check(self.path, self.expected, self._received.digest())
        else:
            integrity.check_local_file(self.path, self.lpath, self.expected)
