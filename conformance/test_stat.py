"""Metadata: ``info``/``exists``/``isfile``/``isdir``/``size``, ``modified``, ``checksum``, caches."""

from __future__ import annotations

import datetime

import pytest

from conformance.harness import Target


def test_info_of_a_file(target: Target) -> None:
    path = target.path("d", "f.bin")
    target.fs.pipe_file(path, b"12345")
    info = target.fs.info(path)
    assert info["name"] == target.fs._strip_protocol(path)
    assert info["type"] == "file"
    assert info["size"] == 5


def test_info_of_a_directory(target: Target) -> None:
    target.fs.pipe_file(target.path("d", "f.bin"), b"12345")
    info = target.fs.info(target.path("d"))
    assert info["type"] == "directory"
    assert info["name"] == target.fs._strip_protocol(target.path("d"))


def test_info_of_a_missing_path_raises_file_not_found(target: Target) -> None:
    with pytest.raises(FileNotFoundError):
        target.fs.info(target.path("missing"))


def test_exists_isfile_isdir(target: Target) -> None:
    target.fs.pipe_file(target.path("d", "f.bin"), b"x")
    fs = target.fs
    assert fs.exists(target.path("d", "f.bin")) and fs.isfile(target.path("d", "f.bin"))
    assert not fs.isdir(target.path("d", "f.bin"))
    assert fs.exists(target.path("d")) and fs.isdir(target.path("d"))
    assert not fs.isfile(target.path("d"))
    assert not fs.exists(target.path("missing"))
    assert not fs.isfile(target.path("missing")) and not fs.isdir(target.path("missing"))
    assert not fs.exists(target.path("d", "f"))  # a prefix of a name is not a path


def test_size_and_sizes(target: Target) -> None:
    target.fs.pipe({target.path("a"): b"1", target.path("b"): b"22"})
    assert target.fs.size(target.path("b")) == 2
    assert target.fs.sizes([target.path("a"), target.path("b")]) == [1, 2]


@pytest.mark.need_capability("modified_time")
def test_modified_is_a_recent_utc_time(target: Target) -> None:
    before = datetime.datetime.now(datetime.UTC)
    path = target.path("timed.bin")
    target.fs.pipe_file(path, b"x")
    modified = target.fs.modified(path)
    assert isinstance(modified, datetime.datetime)
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=datetime.UTC)
    assert abs((modified - before).total_seconds()) < 300


def test_checksum_is_stable_and_follows_the_content(target: Target) -> None:
    path = target.path("sum.bin")
    target.fs.pipe_file(path, b"version one")
    first = target.fs.checksum(path)
    assert target.fs.checksum(path) == first
    target.fs.pipe_file(path, b"version two, longer")
    target.fs.invalidate_cache(path)
    assert target.fs.checksum(path) != first


def test_writes_and_deletes_through_the_filesystem_are_seen_at_once(target: Target) -> None:
    fs = target.fs
    fs.pipe_file(target.path("d", "a"), b"a")
    assert fs.ls(target.path("d"), detail=False) == [fs._strip_protocol(target.path("d", "a"))]
    fs.pipe_file(target.path("d", "b"), b"b")
    assert len(fs.ls(target.path("d"))) == 2
    fs.rm_file(target.path("d", "a"))
    assert fs.ls(target.path("d"), detail=False) == [fs._strip_protocol(target.path("d", "b"))]


def test_invalidate_cache_shows_an_external_write(target: Target) -> None:
    fs = target.fs
    fs.pipe_file(target.path("d", "a"), b"a")
    fs.ls(target.path("d"))  # fills any listings cache
    other = type(fs)(*fs.storage_args, **fs.storage_options, skip_instance_cache=True)
    assert other is not fs
    other.pipe_file(target.path("d", "b"), b"b")
    fs.invalidate_cache(target.path("d"))
    assert sorted(fs.ls(target.path("d"), detail=False)) == sorted(
        fs._strip_protocol(target.path("d", name)) for name in ("a", "b")
    )
    assert fs.cat_file(target.path("d", "b")) == b"b"
