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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from conformance.servers.kdc import Kdc
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


def start_minidfs(
    log_dir: Path,
    data_dir: Path,
    timeout: float = 120.0,
    *,
    name: str = "minidfs",
    conf: Path | None = None,
    jvm_options: tuple[str, ...] = (),
    datanode_hostname: str | None = None,
) -> ServerProcess:
    """Start MiniDFSCluster on free ports with its storage in ``data_dir``; wait until it serves.

    ``conf`` is a Hadoop configuration file whose keys win (the Kerberos settings).
    ``datanode_hostname`` is what the DataNode advertises instead of 127.0.0.1 (it still binds
    127.0.0.1): clients with ``dfs.client.use.datanode.hostname=true`` connect there, so a relay
    listening on that address and the DataNode's port sits between them and the DataNode.
    """
    command_classpath, binary = classpath(), java()
    server: ServerProcess

    def command(ports: dict[str, int]) -> list[str]:
        base = data_dir / f"cluster-{ports['namenode']}"
        return [
            binary,
            *jvm_options,
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
            *(["--datanode-hostname", datanode_hostname] if datanode_hostname else []),
            *(["--conf", str(conf)] if conf is not None else []),
        ]

    server = ServerProcess(
        name=name,
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


# -- Kerberos -----------------------------------------------------------------------------------------
# The same MiniDFSCluster with hadoop.security.authentication=kerberos against a real MIT KDC
# (conformance/servers/kdc.py): the NameNode and DataNode log in from a keytab the fixture made
# (hdfs/localhost, HTTP/localhost), block access tokens are on, and data transfer is SASL-protected
# (dfs.data.transfer.protection=authentication). A DataNode with Kerberos wants privileged ports or
# HTTPS; ignore.secure.ports.for.testing (Hadoop's switch for its own tests) keeps plain HTTP on free
# ports, and SASL still protects the data port. Clients get a Hadoop configuration directory (for
# HADOOP_CONF_DIR) with what any client of a Kerberized cluster needs.

SERVICE_PRINCIPALS = ("hdfs/localhost", "HTTP/localhost")
DATA_TRANSFER_PROTECTION = "authentication"


@dataclass
class KerberizedHdfs:
    """A running Kerberized cluster, its KDC, and the client configuration directory."""

    server: ServerProcess
    kdc: Kdc
    conf_dir: Path
    """Client core-site.xml and hdfs-site.xml: what HADOOP_CONF_DIR names."""

    @property
    def url(self) -> str:
        return namenode_url(self.server)

    @property
    def namenode_principal(self) -> str:
        return self.kdc.principal(SERVICE_PRINCIPALS[0])

    def stop(self) -> None:
        self.server.stop()


def write_hadoop_xml(path: Path, properties: Mapping[str, str]) -> Path:
    rows = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in properties.items()
    )
    path.write_text(f'<?xml version="1.0"?>\n<configuration>\n{rows}</configuration>\n')
    return path


def client_properties(kdc: Kdc) -> dict[str, str]:
    """What a client of the Kerberized cluster is told (core-site.xml and hdfs-site.xml)."""
    principal = kdc.principal(SERVICE_PRINCIPALS[0])
    return {
        "hadoop.security.authentication": "kerberos",
        "dfs.namenode.kerberos.principal": principal,
        "dfs.datanode.kerberos.principal": principal,
        "dfs.data.transfer.protection": DATA_TRANSFER_PROTECTION,
    }


def start_kerberized_minidfs(
    log_dir: Path, data_dir: Path, kdc: Kdc, timeout: float = 120.0
) -> KerberizedHdfs:
    """Make the service principals and keytab, start the cluster with Kerberos, write the client conf."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keytab = kdc.add_principals(data_dir / "hdfs.keytab", *SERVICE_PRINCIPALS)
    http_principal = kdc.principal(SERVICE_PRINCIPALS[1])
    server_conf = write_hadoop_xml(
        data_dir / "kerberos-site.xml",
        {
            **client_properties(kdc),
            "dfs.namenode.keytab.file": str(keytab),
            "dfs.datanode.keytab.file": str(keytab),
            "dfs.web.authentication.kerberos.principal": http_principal,
            "dfs.web.authentication.kerberos.keytab": str(keytab),
            "dfs.block.access.token.enable": "true",
            "dfs.http.policy": "HTTP_ONLY",
            "ignore.secure.ports.for.testing": "true",
        },
    )
    server = start_minidfs(
        log_dir,
        data_dir,
        timeout,
        name="minidfs-kerberos",
        conf=server_conf,
        jvm_options=(f"-Djava.security.krb5.conf={kdc.krb5_conf}",),
    )
    conf_dir = data_dir / "client-conf"
    conf_dir.mkdir(exist_ok=True)
    properties = client_properties(kdc)
    write_hadoop_xml(
        conf_dir / "core-site.xml",
        {
            "fs.defaultFS": namenode_url(server),
            "hadoop.security.authentication": properties.pop("hadoop.security.authentication"),
        },
    )
    write_hadoop_xml(conf_dir / "hdfs-site.xml", properties)
    return KerberizedHdfs(server=server, kdc=kdc, conf_dir=conf_dir)
