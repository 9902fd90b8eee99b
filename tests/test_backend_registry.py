"""Every scheme resolves to its own backend, or to a clear "not available" error - never a wrong one."""

from __future__ import annotations

import sys

import pytest

import artifact_fs
from artifact_fs import backends
from artifact_fs.backends import BackendUnavailableError


def test_unknown_backend_module_is_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="not available"):
        backends.load("no_such_backend")


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes "import s3fs" fail like an absent package
    monkeypatch.delitem(sys.modules, "artifact_fs.backends.s3", raising=False)
    with pytest.raises(BackendUnavailableError, match=r"artifact-fs\[s3\]"):
        backends.load("s3")


def test_local_uri_resolves_to_an_absolute_local_path(tmp_path: object) -> None:
    fs, path = artifact_fs.url_to_fs(f"file://{tmp_path}/x")
    assert "file" in fs.protocol
    assert path == f"{tmp_path}/x"


def test_malformed_uri_never_reaches_a_backend() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        artifact_fs.url_to_fs("nope://bucket/key")
