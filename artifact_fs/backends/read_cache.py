"""The read-ahead of files opened for reading on object stores and through the artifact server.

fsspec's ``"readahead"`` cache fetches one block *beyond* every read it misses: a columnar reader's
8 MiB column chunk costs 8.5 MiB with a 512 KiB block, and a reader that asked exactly for a range
pays a block it never reads. :class:`BlockReadAhead` pads a read to a block instead: a read shorter
than the block fetches a block from its start (a line reader or a small-record parser still makes
one request per block), and a read of a block or more fetches exactly its bytes. Files keep
fsspec's ``cache_type`` argument: ``"readahead"`` or any other cache is still there by name.
"""

from __future__ import annotations

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

__all__ = ["NAME", "BlockReadAhead"]
