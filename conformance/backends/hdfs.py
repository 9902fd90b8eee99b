"""HDFS on a real MiniDFSCluster (one NameNode, one DataNode), through each engine.

``hdfs-native`` always runs. ``hdfs-pyarrow`` (MLflow's own client) needs a JVM and ``libhdfs.so``,
which no package registry ships: where they cannot be found its tests are reported as skipped with
the reason (the only skip the suite allows), and the cluster is not started for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from artifact_fs.backends import hdfs
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers import hdfs as minidfs
from conformance.servers.launcher import ServerProcess

HDFS_NATIVE = BackendSpec(
    id="hdfs-native",
    mark="hdfs",
    capabilities=hdfs.CAPABILITIES,
    xfail={
        "test_a_forked_child_can_open_the_same_url": (
            "hdfs-native's DataNode connection pool belongs to the parent's Rust runtime: a forked "
            "child would hang on its first read, so the backend refuses with a clear error"
        )
    },
)
HDFS_PYARROW = BackendSpec(id="hdfs-pyarrow", mark="hdfs", capabilities=hdfs.CAPABILITIES)
SPECS = [HDFS_NATIVE, HDFS_PYARROW]


@pytest.fixture(scope="session")
def minidfs_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = minidfs.start_minidfs(server_log_dir, tmp_path_factory.mktemp("minidfs"))
    try:
        yield server
    finally:
        server.stop()


def _under_test(spec: BackendSpec, server: ServerProcess, engine: str) -> BackendUnderTest:
    url = minidfs.namenode_url(server)
    return BackendUnderTest(
        spec=spec,
        root_url=f"{url}/suite",
        storage_options={"engine": engine},
        environ={hdfs.ENGINE_VARIABLE: engine},
        details={"server": server, "namenode_url": url, "engine": engine},
    )


@pytest.fixture(scope="session")
def backend_hdfs_native(minidfs_server: ServerProcess) -> BackendUnderTest:
    return _under_test(HDFS_NATIVE, minidfs_server, "hdfs-native")


@pytest.fixture(scope="session")
def backend_hdfs_pyarrow(request: pytest.FixtureRequest) -> BackendUnderTest:
    reason = hdfs.pyarrow_unavailable_reason()
    if reason is not None:
        pytest.skip(f"pyarrow HDFS engine unavailable here: {reason}")
    server: ServerProcess = request.getfixturevalue("minidfs_server")
    return _under_test(HDFS_PYARROW, server, "pyarrow")
