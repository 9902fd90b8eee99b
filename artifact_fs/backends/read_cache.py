"""The read-ahead of files opened for reading on object stores and through the artifact server.

fsspec's ``"readahead"`` cache fetches one block *beyond* every read it misses: a columnar reader's
8 MiB column chunk costs 8.5 MiB with a 512 KiB block, and a reader that asked exactly for a range
pays a block it never reads. :class:`BlockReadAhead` pads a read to a block instead: a read shorter
than the block fetches a block from its start (a line reader or a small-record parser still makes
one request per block), and a read of a block or more fetches exactly its bytes. Files keep
fsspec's ``cache_type`` argument: ``"readahead"`` or any other cache is still there by name.

:class:`DirectReads` is the other half: a read of a block or more that the cache would only pass
through goes straight into the caller's memory (``readinto``), or, for pyarrow, into a buffer of
pyarrow's own pool (``read_buffer``, which pyarrow's ``PythonFile`` calls instead of ``read``). A
fresh ``bytes`` of a Parquet column chunk costs a copy and, above glibc's mmap threshold, a page
fault per 4 KiB; pyarrow's pool recycles its memory.
"""

from __future__ import annotations

import sys
from typing import Any

from fsspec.caching import ReadAheadCache, register_cache

NAME = "block-readahead"
"""The cache's ``cache_type`` name, the default of every reading file that uses it."""


class BlockReadAhead(ReadAheadCache):
    """fsspec's read-ahead cache, padded *to* a block rather than one block past the read."""

    name = NAME
    cache: bytes
    start: int
    end: int

    def _fetch(self, start: int | None, end: int | None) -> bytes:
        start = 0 if start is None else start
        end = self.size if end is None or end > self.size else end
        if start >= self.size or start >= end:
            return b""
        if self.start <= start and end <= self.end:
            self.hit_count += 1
            return self.cache[start - self.start : end - self.start]
        self.miss_count += 1
        head = b""
        if self.start <= start < self.end:  # the held block's tail, then what follows it
            head = self.cache[start - self.start :]
            start = self.end
        stop = min(self.size, max(end, start + self.blocksize))
        self.total_requested_bytes += stop - start
        self.cache = self.fetcher(start, stop)
        self.start, self.end = start, start + len(self.cache)
        return head + self.cache[: end - start]


register_cache(BlockReadAhead, clobber=True)


class DirectReads:
    """Reads of a block or more into the caller's memory, for an fsspec ``AbstractBufferedFile``.

    A backend's file implements :meth:`_fetch_range_into`; where it answers ``False`` (a path its
    fast route leaves, a body cut short) the read is the file's ordinary ``read``. Only a file whose
    cache is :class:`BlockReadAhead` reads directly: that cache fetches such a read exactly and
    keeps nothing a later read could use, while a cache the caller chose keeps its own behaviour.
    """

    blocksize: int
    cache: Any
    loc: int
    mode: str
    size: int
    closed: bool

    def _fetch_range_into(self, start: int, view: memoryview) -> bool:
        """Fill ``view`` with the bytes from ``start`` on; ``False`` when the ordinary read should."""
        return False

    def _direct_length(self, wanted: int) -> int:
        """How many bytes a read of ``wanted`` (negative: to the end) takes directly; 0: none."""
        if self.closed or self.mode != "rb" or not isinstance(self.cache, BlockReadAhead):
            return 0
        length = self.size - self.loc if wanted < 0 else min(wanted, self.size - self.loc)
        held = self.cache.start <= self.loc < self.cache.end
        return length if length >= self.blocksize and not held else 0

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        length = self._direct_length(view.nbytes)
        if length and self._fetch_range_into(self.loc, view[:length]):
            self.loc += length
            return length
        return int(super().readinto(b))  # type: ignore[misc]

    def read_buffer(self, nbytes: int) -> Any:
        """``read(nbytes)`` for pyarrow's ``PythonFile``, a large read as a ``pyarrow.Buffer``."""
        pyarrow = sys.modules.get("pyarrow")  # only pyarrow calls this; it has been imported
        length = self._direct_length(nbytes)
        if length and pyarrow is not None:
            buffer = pyarrow.allocate_buffer(length)
            if self._fetch_range_into(self.loc, memoryview(buffer).cast("B")):
                self.loc += length
                return buffer
        return super().read(nbytes)  # type: ignore[misc]


__all__ = ["NAME", "BlockReadAhead", "DirectReads"]
