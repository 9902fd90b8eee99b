"""The smallest round trip every backend must pass before anything else is worth running."""

from __future__ import annotations

from conformance.harness import Target


def test_pipe_then_cat_returns_the_same_bytes(target: Target) -> None:
    path = target.path("dir", "a.bin")
    target.fs.pipe_file(path, b"hello artifact")
    assert target.fs.cat_file(path) == b"hello artifact"
