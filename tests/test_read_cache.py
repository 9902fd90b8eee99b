"""The read-ahead of reading files (``block-readahead``): a read is padded *to* a block, not past it."""

from __future__ import annotations

import pytest
from fsspec.caching import caches
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

from artifact_fs.backends import read_cache
from artifact_fs.backends.read_cache import BlockReadAhead

BLOCK = 100
DATA = bytes(range(256)) * 4  # 1,024 bytes


class Fetcher:
    """The file's ``_fetch_range``: records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.requests.append((start, end))
        return DATA[start:end]


@pytest.fixture
def fetched() -> tuple[BlockReadAhead, Fetcher]:
    fetcher = Fetcher()
    return BlockReadAhead(BLOCK, fetcher, len(DATA)), fetcher


def test_it_is_fsspecs_cache_by_name() -> None:
    assert caches[read_cache.NAME] is BlockReadAhead


def test_a_read_of_a_block_or_more_fetches_exactly_its_bytes(fetched: tuple[BlockReadAhead, Fetcher]) -> None:
    cache, fetcher = fetched
    assert cache._fetch(10, 510) == DATA[10:510]
    assert cache._fetch(600, 700) == DATA[600:700]
    assert fetcher.requests == [(10, 510), (600, 700)]


def test_a_short_read_fetches_one_block_from_its_start(fetched: tuple[BlockReadAhead, Fetcher]) -> None:
    cache, fetcher = fetched
    assert cache._fetch(5, 15) == DATA[5:15]
    assert cache._fetch(15, 105) == DATA[15:105]  # held
    assert fetcher.requests == [(5, 105)]


def test_sequential_short_reads_cost_one_request_per_block(fetched: tuple[BlockReadAhead, Fetcher]) -> None:
    cache, fetcher = fetched
    out = b"".join(cache._fetch(start, start + 30) for start in range(0, len(DATA), 30))
    assert out == DATA
    assert fetcher.requests[0] == (0, BLOCK)
    # a read running past the held block takes its tail and fetches on from the block's end
    pairs = zip(fetcher.requests, fetcher.requests[1:], strict=False)
    assert all(start == end for (_, end), (start, _) in pairs)
    assert len(fetcher.requests) == -(-len(DATA) // BLOCK)


def test_a_read_is_clipped_to_the_file(fetched: tuple[BlockReadAhead, Fetcher]) -> None:
    cache, fetcher = fetched
    assert cache._fetch(1000, 5000) == DATA[1000:]
    assert cache._fetch(len(DATA), None) == b""
    assert cache._fetch(None, 3) == DATA[:3]
    assert fetcher.requests == [(1000, 1024), (0, BLOCK)]


class Blob(AbstractBufferedFile):
    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        super().__init__(
            MemoryFileSystem(), "/blob", "rb", block_size=BLOCK, cache_type=read_cache.NAME, size=len(DATA)
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fetcher(start, end)


def test_a_file_opened_with_it_reads_what_it_asks_and_no_more() -> None:
    fetcher = Fetcher()
    with Blob(fetcher) as handle:
        handle.seek(200)
        assert handle.read(300) == DATA[200:500]
        assert handle.read(10) == DATA[500:510]
        assert handle.read() == DATA[510:]
    assert fetcher.requests == [(200, 500), (500, 600), (600, 1024)]
    assert caches["readahead"] is not BlockReadAhead  # fsspec's own stays under its name
