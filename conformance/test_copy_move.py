"""Copies and moves inside one backend (server-side where the backend can)."""

from __future__ import annotations

import pytest

from conformance.harness import Target


def test_cp_file_copies_bytes_and_keeps_the_source(target: Target) -> None:
    target.fs.pipe_file(target.path("src.bin"), b"payload")
    target.fs.cp_file(target.path("src.bin"), target.path("sub", "dst.bin"))
    assert target.fs.cat_file(target.path("sub", "dst.bin")) == b"payload"
    assert target.fs.cat_file(target.path("src.bin")) == b"payload"


def test_copy_onto_an_existing_file_replaces_it(target: Target) -> None:
    target.fs.pipe({target.path("src.bin"): b"new", target.path("dst.bin"): b"old and longer"})
    target.fs.copy(target.path("src.bin"), target.path("dst.bin"))
    assert target.fs.cat_file(target.path("dst.bin")) == b"new"


def test_recursive_copy_of_a_tree(target: Target) -> None:
    target.fs.pipe({target.path("t", "a"): b"a", target.path("t", "s", "b"): b"b"})
    target.fs.copy(target.path("t") + "/", target.path("u"), recursive=True)
    assert target.fs.cat_file(target.path("u", "a")) == b"a"
    assert target.fs.cat_file(target.path("u", "s", "b")) == b"b"


def test_copy_of_a_missing_file_raises_file_not_found(target: Target) -> None:
    target.fs.pipe_file(target.path("present"), b"x")
    with pytest.raises(FileNotFoundError):
        target.fs.cp_file(target.path("missing"), target.path("dst"))


@pytest.mark.need_capability("rename")
def test_mv_of_a_file_moves_the_bytes(target: Target) -> None:
    target.fs.pipe_file(target.path("from.bin"), b"moving")
    target.fs.mv(target.path("from.bin"), target.path("to", "to.bin"))
    assert target.fs.cat_file(target.path("to", "to.bin")) == b"moving"
    assert not target.fs.exists(target.path("from.bin"))


@pytest.mark.need_capability("rename")
def test_mv_of_a_tree_moves_every_file(target: Target) -> None:
    target.fs.pipe({target.path("t", "a"): b"a", target.path("t", "s", "b"): b"b"})
    target.fs.mv(target.path("t"), target.path("moved"), recursive=True)
    assert target.fs.cat_file(target.path("moved", "a")) == b"a"
    assert target.fs.cat_file(target.path("moved", "s", "b")) == b"b"
    assert not target.fs.exists(target.path("t", "a"))
