"""fsspec's own abstract test-suite fixtures, mapped onto every backend of the conformance suite.

``fsspec.tests.abstract`` specifies copy/get/put/pipe/open semantics (fsspec's ``copying.rst``,
POSIX ``cp -r`` rules) against four fixtures. Here they come from the parametrised ``target``,
so every backend spec runs the same ~140 cases under its own fresh prefix.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fsspec import AbstractFileSystem
from fsspec.tests.abstract import AbstractFixtures

from conformance.harness import Target


def slash_join(*parts: str) -> str:
    """Join path parts with ``/`` on every OS and backend (fsspec paths are POSIX-like)."""
    return "/".join(part.rstrip("/") if i < len(parts) - 1 else part for i, part in enumerate(parts))


class ArtifactFixtures(AbstractFixtures):  # type: ignore[misc]
    """The abstract suite's fixtures, taken from the backend under test."""

    @pytest.fixture
    def fs(self, target: Target) -> AbstractFileSystem:
        return target.fs

    @pytest.fixture
    def fs_path(self, target: Target) -> str:
        return target.root

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return slash_join

    @pytest.fixture
    def supports_empty_directories(self, target: Target) -> bool:
        return target.backend.capabilities.empty_directories
