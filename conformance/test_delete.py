"""Deleting: files, trees, lists; missing paths; siblings that share a name prefix survive."""

from __future__ import annotations

import pytest

from conformance.harness import Target

pytestmark = pytest.mark.need_capability("delete")


def test_rm_file_removes_only_that_file(target: Target) -> None:
    target.fs.pipe({target.path("d", "a"): b"a", target.path("d", "b"): b"b"})
    target.fs.rm_file(target.path("d", "a"))
    assert not target.fs.exists(target.path("d", "a"))
    assert target.fs.cat_file(target.path("d", "b")) == b"b"


def test_rm_recursive_removes_a_tree(target: Target) -> None:
    target.fs.pipe({target.path("t", "a"): b"a", target.path("t", "sub", "b"): b"b"})
    target.fs.rm(target.path("t"), recursive=True)
    assert not target.fs.exists(target.path("t"))
    assert not target.fs.exists(target.path("t", "sub", "b"))


def test_rm_of_a_list_removes_each_path(target: Target) -> None:
    paths = [target.path(f"f{i}") for i in range(4)]
    target.fs.pipe(dict.fromkeys(paths, b"x"))
    target.fs.rm(paths[:3])
    assert [target.fs.exists(p) for p in paths] == [False, False, False, True]


def test_rm_of_a_directory_keeps_a_sibling_sharing_its_prefix(target: Target) -> None:
    """Deleting ``foo`` must not delete ``foobar`` (MLflow's ``_is_object_key_within_path``)."""
    target.fs.pipe(
        {target.path("foo", "a"): b"a", target.path("foobar", "b"): b"b", target.path("foo.txt"): b"c"}
    )
    target.fs.rm(target.path("foo"), recursive=True)
    assert target.fs.cat_file(target.path("foobar", "b")) == b"b"
    assert target.fs.cat_file(target.path("foo.txt")) == b"c"


def test_rm_of_a_missing_path_raises_file_not_found(target: Target) -> None:
    target.fs.pipe_file(target.path("present"), b"x")
    with pytest.raises(FileNotFoundError):
        target.fs.rm(target.path("missing"))
    with pytest.raises(FileNotFoundError):
        target.fs.rm_file(target.path("missing"))


def test_a_deleted_file_cannot_be_read(target: Target) -> None:
    path = target.path("gone")
    target.fs.pipe_file(path, b"x")
    target.fs.rm(path)
    with pytest.raises(FileNotFoundError):
        target.fs.cat_file(path)
