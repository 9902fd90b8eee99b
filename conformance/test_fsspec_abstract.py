"""fsspec's abstract copy/get/put/pipe/open tests, run on every backend spec.

Known deviations of one server are strict xfails declared in its ``BackendSpec.xfail`` (keyed by
test name), so a fixed server turns the xfail red.
"""

from __future__ import annotations

import pytest
from fsspec.tests import abstract

from conformance.abstract_fixtures import ArtifactFixtures


class TestCopy(abstract.AbstractCopyTests, ArtifactFixtures):  # type: ignore[misc]
    pass


class TestGet(abstract.AbstractGetTests, ArtifactFixtures):  # type: ignore[misc]
    pass


class TestPut(abstract.AbstractPutTests, ArtifactFixtures):  # type: ignore[misc]
    pass


class TestPipe(abstract.AbstractPipeTests, ArtifactFixtures):  # type: ignore[misc]
    pass


@pytest.mark.need_capability("exclusive_create")
class TestOpen(abstract.AbstractOpenTests, ArtifactFixtures):  # type: ignore[misc]
    pass
