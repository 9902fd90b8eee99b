"""A real HDFS for the tests: Hadoop's MiniDFSCluster (one NameNode, one DataNode) in one JVM.

``conformance/servers/minidfs`` holds a tiny Maven project; ``scripts/install/40-hadoop.sh`` copies
its dependencies (``hadoop-client-minicluster``) to ``target/lib`` and compiles the main class to
``target/classes``, so the test run starts ``java`` directly. The NameNode RPC, NameNode HTTP and
the DataNode's data, HTTP and IPC ports are all free ports below 32768 on 127.0.0.1; the main
prints ``READY hdfs://127.0.0.1:<port>`` after the NameNode has left safe mode and the DataNode
has registered, which is what the readiness probe waits for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError

PROJECT = Path(__file__).parent / "minidfs"
MAIN_CLASS = "org.artifactfs.minidfs.MiniDfs"
PORT_NAMES = ("namenode", "namenode_http", "datanode", "datanode_http", "datanode_ipc")
BLOCK_SIZE = 1024 * 1024
"""Small blocks: a few-MiB test file crosses block boundaries."""


def classpath() -> str:
    """The compiled main class plus Hadoop's jars, as built by scripts/install/40-hadoop.sh."""
    classes, lib = PROJECT / "target" / "classes", PROJECT / "target" / "lib"
    if not (classes / "org" / "artifactfs" / "minidfs" / "MiniDfs.class").exists() or not any(
        lib.glob("*.jar")
    ):
        raise ServerStartError(
            f"MiniDFSCluster is not built in {PROJECT / 'target'}; run scripts/install/40-hadoop.sh"
        )
    return f"{classes}:{lib}/*"


LIBHDFS_DIR = PROJECT / "target" / "libhdfs"
"""Where scripts/install/45-libhdfs.sh builds libhdfs.so (Apache's sources, from pydoop's sdist)."""
CLIENT_JARS_EXCLUDED = ("hadoop-client-minicluster", "junit", "hamcrest")


def libhdfs_environ() -> dict[str, str]:
    """``ARROW_LIBHDFS_DIR``, ``CLASSPATH`` (Hadoop's client jars, listed: libhdfs does not expand
    ``*``) and ``JAVA_HOME`` for the pyarrow engine and MLflow's HDFS repository, from what the
    install scripts built; empty when nothing is built."""
    lib = PROJECT / "target" / "lib"
    jars = sorted(str(jar) for jar in lib.glob("*.jar") if not jar.name.startswith(CLIENT_JARS_EXCLUDED))
    if not (LIBHDFS_DIR / "libhdfs.so").exists() or not jars:
        return {}
    java_home = Path(java()).resolve().parent.parent  # Arrow finds libjvm only under JAVA_HOME
    return {"ARROW_LIBHDFS_DIR": str(LIBHDFS_DIR), "CLASSPATH": ":".join(jars), "JAVA_HOME": str(java_home)}


def java() -> str:
    binary = shutil.which("java")
    if binary is None:
        raise ServerStartError(
            "java (17 or newer) is required for the HDFS tests; run scripts/install/40-hadoop.sh"
        )
    return binary


def _ready(log_path: Path | None) -> bool:
    if log_path is None or not log_path.exists():
        return False
    return any(line.startswith("READY hdfs://") for line in log_path.read_text(errors="replace").splitlines())


def start_minidfs(log_dir: Path, data_dir: Path, timeout: float = 120.0) -> ServerProcess:
    """Start MiniDFSCluster on free ports with its storage in ``data_dir``; wait until it serves."""
    command_classpath, binary = classpath(), java()
    server: ServerProcess

    def command(ports: dict[str, int]) -> list[str]:
        base = data_dir / f"cluster-{ports['namenode']}"
        return [
            binary,
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-cp",
            command_classpath,
            MAIN_CLASS,
            "--base-dir",
            str(base),
            "--namenode-port",
            str(ports["namenode"]),
            "--namenode-http-port",
            str(ports["namenode_http"]),
            "--datanode-port",
            str(ports["datanode"]),
            "--datanode-http-port",
            str(ports["datanode_http"]),
            "--datanode-ipc-port",
            str(ports["datanode_ipc"]),
            "--block-size",
            str(BLOCK_SIZE),
        ]

    server = ServerProcess(
        name="minidfs",
        command=command,
        ready=lambda ports: lambda: _ready(server.log_path),
        log_dir=log_dir,
        port_names=PORT_NAMES,
        timeout=timeout,
        stop_grace=15.0,
    )
    return server.start()


def namenode_url(server: ServerProcess) -> str:
    return f"hdfs://127.0.0.1:{server.ports['namenode']}"
