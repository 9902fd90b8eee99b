"""HDFS on a real MiniDFSCluster (one NameNode, one DataNode), through each engine.

``hdfs-native`` always runs. ``hdfs-pyarrow`` (MLflow's own client) needs a JVM and ``libhdfs.so``,
which no package registry ships as a binary: ``scripts/install/45-libhdfs.sh`` builds it from Apache's
sources. Where it still cannot be found its tests are reported as skipped with the reason (the only
skip the suite allows) and the cluster is not started for it; in CI that is a failure.
"""

from __future__ import annotations

import os
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
HDFS_PYARROW = BackendSpec(
    id="hdfs-pyarrow",
    mark="hdfs",
    capabilities=hdfs.CAPABILITIES,
    xfail={
        "test_a_forked_child_can_open_the_same_url": (
            "libhdfs runs a JVM inside the process and a JVM does not survive fork: a forked child "
            "would hang in its first call, so the backend refuses with a clear error"
        )
    },
)
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
    # The JVM reads these when libhdfs starts it (once per process); values the user set win.
    for name, value in minidfs.libhdfs_environ().items():
        os.environ.setdefault(name, value)
    reason = hdfs.pyarrow_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pyarrow HDFS engine unavailable in CI (scripts/install/45-libhdfs.sh): {reason}")
        pytest.skip(f"pyarrow HDFS engine unavailable here: {reason}")
    server: ServerProcess = request.getfixturevalue("minidfs_server")
    return _under_test(HDFS_PYARROW, server, "pyarrow")
