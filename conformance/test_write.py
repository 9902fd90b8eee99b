"""Writing: whole-object puts, buffered writes across part boundaries, atomicity, progress."""

from __future__ import annotations

import os

import pytest
from fsspec.callbacks import Callback

import artifact_fs
from conformance.harness import Target
from conformance.helpers import random_bytes, run_python

SMALLEST_TEST_BLOCK = 64 * 1024


def write_block_size(target: Target) -> int:
    """A block size that is small but legal for the backend's multipart minimum."""
    return max(SMALLEST_TEST_BLOCK, target.backend.capabilities.write_parts_min_size)


def test_pipe_file_overwrites_with_shorter_content(target: Target) -> None:
    path = target.path("dir", "a.bin")
    target.fs.pipe_file(path, b"hello artifact")
    assert target.fs.cat_file(path) == b"hello artifact"
    target.fs.pipe_file(path, b"bye")
    assert target.fs.cat_file(path) == b"bye"
    assert target.fs.size(path) == 3


def test_pipe_file_create_mode_writes_a_new_file(target: Target) -> None:
    path = target.path("new.bin")
    target.fs.pipe_file(path, b"first", mode="create")
    assert target.fs.cat_file(path) == b"first"


def test_pipe_of_a_mapping_writes_every_file(target: Target) -> None:
    files = {target.path("m", f"{i}.txt"): str(i).encode() * (i + 1) for i in range(5)}
    target.fs.pipe(files)
    for path, value in files.items():
        assert target.fs.cat_file(path) == value


def test_writing_nested_paths_needs_no_mkdir(target: Target) -> None:
    path = target.path("a", "b", "c", "deep.txt")
    target.fs.pipe_file(path, b"deep")
    assert target.fs.cat_file(path) == b"deep"
    assert target.fs.isdir(target.path("a", "b"))


def test_empty_write_creates_an_empty_file(target: Target) -> None:
    path = target.path("empty.bin")
    with target.fs.open(path, "wb"):
        pass
    assert target.fs.isfile(path)
    assert target.fs.size(path) == 0


def test_touch_creates_an_empty_file(target: Target) -> None:
    path = target.path("touched")
    target.fs.touch(path)
    assert target.fs.cat_file(path) == b""


def test_many_small_writes_across_several_parts(target: Target) -> None:
    """Writes smaller than a block, through a small block size, so part boundaries are crossed."""
    block = write_block_size(target)
    data = random_bytes(block * 2 + block // 2 + 123, seed=3)
    path = target.path("parts.bin")
    with target.fs.open(path, "wb", block_size=block) as f:
        for offset in range(0, len(data), 10_000):
            f.write(data[offset : offset + 10_000])
    assert target.fs.size(path) == len(data)
    assert target.fs.cat_file(path) == data


def test_one_write_larger_than_several_parts(target: Target) -> None:
    block = write_block_size(target)
    data = random_bytes(block * 3 + 1, seed=4)
    path = target.path("big-write.bin")
    with target.fs.open(path, "wb", block_size=block) as f:
        f.write(data)
    assert target.fs.cat_file(path) == data


def test_text_mode_write_and_read_back(target: Target) -> None:
    path = target.path("notes.txt")
    with target.fs.open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("alpha\n")
        f.write("βeta\n")
    assert target.fs.cat_file(path) == "alpha\nβeta\n".encode()


def test_put_file_uploads_bytes_and_reports_progress(target: Target, tmp_path: os.PathLike[str]) -> None:
    data = random_bytes(200_000, seed=5)
    local = os.path.join(tmp_path, "upload.bin")
    with open(local, "wb") as f:
        f.write(data)
    callback = Callback()
    path = target.path("uploaded.bin")
    target.fs.put_file(local, path, callback=callback)
    assert target.fs.cat_file(path) == data
    assert callback.size == len(data)
    assert callback.value == len(data)


def test_get_file_downloads_bytes(target: Target, tmp_path: os.PathLike[str]) -> None:
    data = random_bytes(100_000, seed=6)
    path = target.path("download.bin")
    target.fs.pipe_file(path, data)
    local = os.path.join(tmp_path, "download.bin")
    target.fs.get_file(path, local)
    with open(local, "rb") as f:
        assert f.read() == data


def test_artifact_fs_open_writes_through_the_url(target: Target) -> None:
    url = target.url + "/via-url/file.txt"
    with artifact_fs.open(url, "wb", **target.backend.storage_options) as f:
        f.write(b"written by url")
    assert target.fs.cat_file(target.path("via-url", "file.txt")) == b"written by url"


KILLED_WRITER = """
import artifact_fs, random
fs, path = artifact_fs.url_to_fs(url, **options)
f = fs.open(path, "wb", block_size=block)
f.write(random.Random(seed).randbytes(block * 2 + 10))
f.flush()
os._exit(0)  # die with the file open: no close, no finalizers
"""
"""A writer process that sends more than two parts, flushes them and dies."""


@pytest.mark.need_capability("atomic_write")
def test_a_killed_writer_leaves_no_file(target: Target) -> None:
    """A process that dies after sending several parts must not leave a partial file visible."""
    sibling = target.path("killed", "sibling.txt")
    target.fs.pipe_file(sibling, b"keeps the directory")
    url = target.url + "/killed/partial.bin"
    run_python(
        KILLED_WRITER, url=url, options=target.backend.storage_options, block=write_block_size(target), seed=7
    )
    target.fs.invalidate_cache()
    assert not target.fs.exists(target.path("killed", "partial.bin"))
    assert target.fs.find(target.path("killed")) == [target.fs._strip_protocol(sibling)]


@pytest.mark.need_capability("atomic_write")
def test_a_killed_overwrite_keeps_the_previous_content(target: Target) -> None:
    """A writer that dies after sending several parts of a replacement leaves the old file whole."""
    path = target.path("replaced.bin")
    target.fs.pipe_file(path, b"old content")
    url = target.url + "/replaced.bin"
    run_python(
        KILLED_WRITER, url=url, options=target.backend.storage_options, block=write_block_size(target), seed=8
    )
    target.fs.invalidate_cache()
    assert target.fs.cat_file(path) == b"old content"
