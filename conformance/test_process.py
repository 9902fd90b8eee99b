"""Processes and threads: pickled filesystems and files, use after ``fork``, spawned workers."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle

import pytest
from fsspec import AbstractFileSystem

from conformance.harness import Target
from conformance.helpers import FORK_AND_CHECK, run_python

DATA = bytes(range(256)) * 64


def read_range(fs: AbstractFileSystem, path: str, start: int, end: int) -> bytes:
    """Runs in worker processes (importable by name for spawn)."""
    return bytes(fs.cat_file(path, start=start, end=end))


def test_a_pickled_filesystem_reads_the_same_bytes(target: Target) -> None:
    path = target.path("p.bin")
    target.fs.pipe_file(path, DATA)
    clone = pickle.loads(pickle.dumps(target.fs))
    assert type(clone) is type(target.fs)
    assert clone.cat_file(path) == DATA


def test_a_pickled_open_file_resumes_at_its_position(target: Target) -> None:
    path = target.path("p.bin")
    target.fs.pipe_file(path, DATA)
    with target.fs.open(path, "rb") as f:
        assert f.read(100) == DATA[:100]
        clone = pickle.loads(pickle.dumps(f))
    try:
        assert clone.read(50) == DATA[100:150]
        clone.seek(0)
        assert clone.read() == DATA
    finally:
        clone.close()


def test_a_forked_child_can_open_the_same_url(target: Target) -> None:
    """A process that used the filesystem (sessions, event loop, instance cache) forks a worker; the
    worker asks for the same URL and must get a working filesystem, not the parent's."""
    target.fs.pipe_file(target.path("fork.bin"), DATA)
    run_python(
        FORK_AND_CHECK
        + """
import artifact_fs
fs, root = artifact_fs.url_to_fs(url, **options)
assert fs.cat_file(root + "/fork.bin", start=0, end=10) == data[:10]

def child():
    fs, root = artifact_fs.url_to_fs(url, **options)
    fs.pipe_file(root + "/from-child.bin", b"child")
    return fs.cat_file(root + "/fork.bin", start=100, end=200) == data[100:200]

run_in_fork(child)
assert fs.cat_file(root + "/fork.bin", start=0, end=10) == data[:10]
""",
        url=target.url,
        options=target.backend.storage_options,
        data=DATA,
    )
    assert target.fs.cat_file(target.path("from-child.bin")) == b"child"


@pytest.mark.need_capability("fork_safe")
def test_the_same_filesystem_object_works_in_a_forked_child(target: Target) -> None:
    target.fs.pipe_file(target.path("fork.bin"), DATA)
    run_python(
        FORK_AND_CHECK
        + """
import artifact_fs
fs, root = artifact_fs.url_to_fs(url, **options)
assert fs.cat_file(root + "/fork.bin", start=0, end=10) == data[:10]

def child():
    fs.pipe_file(root + "/from-child.bin", b"child")
    return fs.cat_file(root + "/fork.bin", start=100, end=200) == data[100:200]

run_in_fork(child)
""",
        url=target.url,
        options=target.backend.storage_options,
        data=DATA,
    )
    assert target.fs.cat_file(target.path("from-child.bin")) == b"child"


def test_a_spawned_worker_uses_the_pickled_filesystem(target: Target) -> None:
    path = target.path("spawn.bin")
    target.fs.pipe_file(path, DATA)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(read_range, target.fs, path, 10, 20).result(timeout=120) == DATA[10:20]


def test_concurrent_reads_from_threads(target: Target) -> None:
    paths = [target.path(f"t{i}.bin") for i in range(8)]
    target.fs.pipe({path: DATA[i:] for i, path in enumerate(paths)})
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: target.fs.cat_file(paths[i]), range(8)))
    assert results == [DATA[i:] for i in range(8)]
