"""The local-filesystem backend: no server, a temporary directory."""

from __future__ import annotations

import pytest

from artifact_fs.backends import local
from conformance.harness import BackendSpec, BackendUnderTest

LOCAL = BackendSpec(id="local", mark="local", capabilities=local.CAPABILITIES)
SPECS = [LOCAL]


@pytest.fixture(scope="session")
def backend_local(tmp_path_factory: pytest.TempPathFactory) -> BackendUnderTest:
    root = tmp_path_factory.mktemp("local-artifacts")
    return BackendUnderTest(spec=LOCAL, root_url=root.as_uri())
