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


class DirectBlob(read_cache.DirectReads, Blob):
    """A file that reads large ranges into the caller's memory; ``into`` records those reads and
    ``refuse`` makes them answer ``False`` (the backend's fast route unavailable)."""

    def __init__(self, fetcher: Fetcher, cache_type: str = read_cache.NAME, refuse: bool = False) -> None:
        self.into: list[tuple[int, int]] = []
        self.refuse = refuse
        self.fetcher = fetcher
        AbstractBufferedFile.__init__(
            self, MemoryFileSystem(), "/blob", "rb", block_size=BLOCK, cache_type=cache_type, size=len(DATA)
        )

    def _fetch_range_into(self, start: int, view: memoryview) -> bool:
        self.into.append((start, start + len(view)))
        if self.refuse:
            view[:] = b"\0" * len(view)  # a half-written view must not be returned
            return False
        view[:] = DATA[start : start + len(view)]
        return True


def test_a_read_of_a_block_or_more_goes_into_the_callers_buffer() -> None:
    fetcher = Fetcher()
    with DirectBlob(fetcher) as handle:
        handle.seek(50)
        target = bytearray(300)
        assert handle.readinto(target) == 300
        assert target == DATA[50:350]
        assert handle.tell() == 350
        tail = bytearray(1000)  # more than is left: clipped to the file
        assert handle.readinto(tail) == len(DATA) - 350
        assert tail[: len(DATA) - 350] == DATA[350:]
        assert handle.readinto(bytearray(10)) == 0
        assert handle.into == [(50, 350), (350, len(DATA))]
    assert fetcher.requests == []


def test_read_buffer_gives_pyarrow_its_own_buffer_for_a_large_read_and_bytes_for_a_short_one() -> None:
    pa = pytest.importorskip("pyarrow")
    fetcher = Fetcher()
    with DirectBlob(fetcher) as handle:
        short = handle.read_buffer(10)  # a block through the cache
        assert short == DATA[:10]
        assert isinstance(short, bytes)
        held = handle.read_buffer(200)  # starts inside the held block: the cache's tail, then on
        assert held == DATA[10:210]
        large = handle.read_buffer(400)
        assert isinstance(large, pa.Buffer)
        assert large.to_pybytes() == DATA[210:610]
        assert handle.read_buffer(-1).to_pybytes() == DATA[610:]
    assert fetcher.requests == [(0, BLOCK), (BLOCK, 210)]
    assert handle.into == [(210, 610), (610, len(DATA))]


def test_a_refused_direct_read_is_the_ordinary_read() -> None:
    pa = pytest.importorskip("pyarrow")
    fetcher = Fetcher()
    with DirectBlob(fetcher, refuse=True) as handle:
        target = bytearray(300)
        assert handle.readinto(target) == 300
        assert target == DATA[:300]
        chunk = handle.read_buffer(300)
        assert not isinstance(chunk, pa.Buffer)
        assert chunk == DATA[300:600]
    assert handle.into == [(0, 300), (300, 600)]
    assert fetcher.requests == [(0, 300), (300, 600)]


def test_a_cache_the_caller_chose_keeps_its_reads() -> None:
    fetcher = Fetcher()
    with DirectBlob(fetcher, cache_type="all") as handle:
        target = bytearray(300)
        assert handle.readinto(target) == 300
        assert target == DATA[:300]
        assert handle.read(300) == DATA[300:600]
    assert handle.into == []
    assert fetcher.requests == [(0, len(DATA))]
