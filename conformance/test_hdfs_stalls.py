"""``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` on HDFS: a stalled NameNode or DataNode is cut.

A MiniDFSCluster of its own, with a :class:`FaultyProxy` in front of each server. The NameNode's is
an ordinary relay (the URL names its port). A DataNode's address comes from the NameNode, so the
DataNode advertises the hostname ``127.0.0.2`` (it binds 127.0.0.1), the client connects by hostname
(``dfs.client.use.datanode.hostname=true``), and the proxy listens on 127.0.0.2 at the DataNode's
port. While a proxy stalls, an upload, a download or a status call fails within a few timeouts;
a fresh lookup afterwards works. hdfs-native names the variable in a ``TimeoutError``; libhdfs reports
the Java client's ``SocketTimeoutException`` only as errno 255 (the reason goes to stderr).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from artifact_fs.backends import hdfs, resolve
from conformance.backends.hdfs import require_pyarrow_engine
from conformance.servers import hdfs as minidfs
from conformance.servers.faulty_proxy import FaultyProxy
from conformance.servers.launcher import ServerProcess

pytestmark = pytest.mark.hdfs

TIMEOUT = 2
BOUND = 3 * TIMEOUT + 6.0
"""A stall ends within a few timeouts: libhdfs waits on a socket write, then on the pipeline's
recovery (measured: ~7 s at most with a 2 s timeout); hdfs-native's calls end at the timeout."""
MIB = 1024 * 1024
DATANODE_HOSTNAME = "127.0.0.2"


@dataclass
class ProxiedHdfs:
    server: ServerProcess
    namenode: FaultyProxy
    datanode: FaultyProxy


@pytest.fixture(scope="module")
def proxied_hdfs(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedHdfs]:
    server = minidfs.start_minidfs(
        server_log_dir,
        tmp_path_factory.mktemp("minidfs-stalls"),
        name="minidfs-stalls",
        datanode_hostname=DATANODE_HOSTNAME,
    )
    port = server.ports["datanode"]
    namenode = FaultyProxy(server.ports["namenode"])
    datanode = FaultyProxy(port, listen=(DATANODE_HOSTNAME, port))
    try:
        yield ProxiedHdfs(server, namenode, datanode)
    finally:
        namenode.stop()
        datanode.stop()
        server.stop()


def engine_available(engine: str) -> None:
    if engine == "pyarrow":
        require_pyarrow_engine()


def proxied_filesystem(cluster: ProxiedHdfs, engine: str, root: str) -> Any:
    """A filesystem reaching the NameNode and the DataNode only through the proxies."""
    environ = {hdfs.ENGINE_VARIABLE: engine, "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": str(TIMEOUT)}
    fs, path = resolve(
        f"hdfs://127.0.0.1:{cluster.namenode.port}{root}",
        environ=environ,
        engine=engine,
        extra_conf={"dfs.client.use.datanode.hostname": "true"},
    )
    return fs, path


def cut_within_the_bound(engine: str, action: Callable[[], object]) -> OSError:
    started = time.monotonic()
    with pytest.raises(OSError) as caught:
        action()
    elapsed = time.monotonic() - started
    print(f"{engine}: failed after {elapsed:.1f}s: {caught.value}")
    assert elapsed < BOUND, elapsed
    assert not isinstance(caught.value, FileNotFoundError), "a stalled NameNode is not a missing file"
    if engine == "hdfs-native":
        assert isinstance(caught.value, TimeoutError)
        assert "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT" in str(caught.value)
    return caught.value


@pytest.mark.parametrize("engine", ["hdfs-native", "pyarrow"])
@pytest.mark.parametrize(
    ("peer", "direction"),
    [
        ("datanode", "upload"),
        ("datanode", "download"),
        ("namenode", "upload"),  # create, then the writes' NameNode calls
        ("namenode", "info"),
    ],
)
def test_a_stalled_hdfs_transfer_is_cut(
    proxied_hdfs: ProxiedHdfs, engine: str, peer: str, direction: str
) -> None:
    engine_available(engine)
    root = f"/stalls/{engine}-{uuid.uuid4().hex[:8]}"
    fs, path = proxied_filesystem(proxied_hdfs, engine, root)
    data = os.urandom(2 * MIB)  # two blocks
    fs.pipe_file(f"{path}/there.bin", data)
    connections = proxied_hdfs.datanode.connections
    assert fs.cat_file(f"{path}/there.bin") == data
    assert proxied_hdfs.datanode.connections > connections, "the DataNode was not reached through its proxy"

    actions: dict[str, Callable[[], object]] = {
        "upload": lambda: fs.pipe_file(f"{path}/up.bin", data),
        "download": lambda: fs.cat_file(f"{path}/there.bin"),
        "info": lambda: fs.info(f"{path}/there.bin"),
    }
    proxy = proxied_hdfs.namenode if peer == "namenode" else proxied_hdfs.datanode
    proxy.stall = True
    try:
        cut_within_the_bound(engine, actions[direction])
    finally:
        proxy.stall = False
    again, _ = proxied_filesystem(proxied_hdfs, engine, root)
    assert again.info(f"{path}/there.bin")["size"] == len(data)


def test_a_slow_but_moving_hdfs_native_transfer_outlasts_the_timeout(proxied_hdfs: ProxiedHdfs) -> None:
    """hdfs-native's calls are bounded one chunk at a time: a transfer longer than the timeout completes.

    The bound is per call, and a write or the close waits for hdfs-native's window of packets not yet
    acknowledged: the relay's delay is kept small enough that draining that window stays well inside
    the timeout (0.05 s a relayed piece drained it in about 2 s on a loaded 2-core machine and cut
    the write), with enough data that the whole transfer still lasts over 1.5x the timeout."""
    fs, path = proxied_filesystem(proxied_hdfs, "hdfs-native", f"/stalls/slow-{uuid.uuid4().hex[:8]}")
    data = os.urandom(4 * MIB)
    proxied_hdfs.datanode.latency = 0.02
    try:
        started = time.monotonic()
        fs.pipe_file(f"{path}/slow.bin", data)
        assert fs.cat_file(f"{path}/slow.bin") == data
        elapsed = time.monotonic() - started
    finally:
        proxied_hdfs.datanode.latency = 0.0
    print(f"slow round trip took {elapsed:.1f}s with a {TIMEOUT} s timeout")
    assert elapsed > 1.5 * TIMEOUT, "the proxy's latency should have made the transfer outlast the timeout"
