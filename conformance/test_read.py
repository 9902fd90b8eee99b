"""Reading: whole files, byte ranges (Python slice semantics), ``cat_ranges`` and file objects."""

from __future__ import annotations

import random

from conformance.harness import Target
from conformance.helpers import random_bytes

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset recognisable
LINES = [f"line {i:03d}\n".encode() for i in range(50)]


def test_cat_file_returns_the_whole_file(target: Target) -> None:
    path = target.path("data.bin")
    target.fs.pipe_file(path, DATA)
    assert target.fs.cat_file(path) == DATA
    assert target.fs.cat(path) == DATA


def test_an_empty_file_reads_as_no_bytes(target: Target) -> None:
    path = target.path("empty")
    target.fs.pipe_file(path, b"")
    assert target.fs.cat_file(path) == b""
    with target.fs.open(path, "rb") as f:
        assert f.read() == b""


def check_ranges(target: Target, ranges: list[tuple[int | None, int | None]]) -> None:
    path = target.path("data.bin")
    target.fs.pipe_file(path, DATA)
    for start, end in ranges:
        got = target.fs.cat_file(path, start=start, end=end)
        assert got == DATA[start:end], f"cat_file(start={start}, end={end}) gave {len(got)} bytes"


def test_cat_file_ranges_inside_the_file(target: Target) -> None:
    check_ranges(target, [(0, 10), (10, None), (None, 10), (100, 612), (1000, 1024)])


def test_cat_file_negative_ranges_count_from_the_end(target: Target) -> None:
    check_ranges(target, [(-10, None), (0, -10), (-20, -10)])


def test_cat_file_range_end_beyond_eof_is_clipped(target: Target) -> None:
    check_ranges(target, [(1000, 5000), (0, 5000)])


def test_cat_file_range_starting_at_or_beyond_eof_is_empty(target: Target) -> None:
    check_ranges(target, [(1024, None), (2000, None), (2000, 3000)])


def test_cat_file_empty_range_is_empty(target: Target) -> None:
    check_ranges(target, [(5, 5), (0, 0)])


def test_cat_ranges_answers_in_request_order(target: Target) -> None:
    first, second = target.path("a.bin"), target.path("b.bin")
    other = DATA[::-1]
    target.fs.pipe({first: DATA, second: other})
    paths = [second, first, first, second]
    starts = [900, 512, 0, 0]
    ends = [1000, 1024, 16, 1]
    result = target.fs.cat_ranges(paths, starts, ends)
    assert result == [other[900:1000], DATA[512:1024], DATA[0:16], other[0:1]]


def test_cat_ranges_returns_the_error_of_a_missing_file_in_its_slot(target: Target) -> None:
    present, missing = target.path("a.bin"), target.path("missing.bin")
    target.fs.pipe_file(present, DATA)
    result = target.fs.cat_ranges([present, missing], [0, 0], [4, 4], on_error="return")
    assert result[0] == DATA[:4]
    assert isinstance(result[1], FileNotFoundError)


def test_cat_of_several_paths_maps_each_path_to_its_bytes(target: Target) -> None:
    files = {target.path(f"f{i}.bin"): DATA[i:] for i in range(3)}
    target.fs.pipe(files)
    result = target.fs.cat(sorted(files))
    assert {target.fs._strip_protocol(k): v for k, v in result.items()} == {
        target.fs._strip_protocol(k): v for k, v in files.items()
    }


def test_file_object_seek_read_tell(target: Target) -> None:
    path = target.path("data.bin")
    target.fs.pipe_file(path, DATA)
    with target.fs.open(path, "rb") as f:
        assert f.size == len(DATA)
        assert f.tell() == 0
        assert f.read(10) == DATA[:10]
        assert f.tell() == 10
        assert f.seek(100) == 100
        assert f.read(5) == DATA[100:105]
        assert f.seek(-24, 2) == 1000
        assert f.read() == DATA[1000:]
        assert f.read() == b""
        assert f.read(10) == b""
        f.seek(-4, 1)
        assert f.read(100) == DATA[-4:]
        f.seek(0)
        assert f.read() == DATA


def test_file_object_readline_and_iteration(target: Target) -> None:
    path = target.path("lines.txt")
    target.fs.pipe_file(path, b"".join(LINES))
    with target.fs.open(path, "rb") as f:
        assert f.readline() == LINES[0]
        assert f.readline() == LINES[1]
        assert f.tell() == len(LINES[0]) + len(LINES[1])
        assert list(f) == LINES[2:]
    with target.fs.open(path, "rb") as f:
        assert f.readlines() == LINES


def test_text_mode_round_trips_unicode(target: Target) -> None:
    path = target.path("text.txt")
    text = "ünïcødé ✓ 文字\nsecond line\n"
    with target.fs.open(path, "w", encoding="utf-8") as f:
        f.write(text)
    with target.fs.open(path, "r", encoding="utf-8") as f:
        assert f.read() == text
    assert target.fs.cat_file(path) == text.encode()


def test_reads_across_small_blocks_match_the_data(target: Target) -> None:
    """Random reads through a tiny read block size cross block boundaries in every direction."""
    data = random_bytes(300_000, seed=1)
    path = target.path("blocks.bin")
    target.fs.pipe_file(path, data)
    rng = random.Random(2)
    with target.fs.open(path, "rb", block_size=4096) as f:
        for _ in range(40):
            start = rng.randrange(len(data))
            length = rng.randrange(1, 20_000)
            f.seek(start)
            assert f.read(length) == data[start : start + length]


def test_head_and_tail(target: Target) -> None:
    path = target.path("data.bin")
    target.fs.pipe_file(path, DATA)
    assert target.fs.head(path, 7) == DATA[:7]
    assert target.fs.tail(path, 7) == DATA[-7:]
