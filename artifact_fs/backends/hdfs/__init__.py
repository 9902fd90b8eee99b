"""HDFS (``hdfs://host:port/path``, ``hdfs:/path``, ``viewfs://``) configured like MLflow's repository.

The same MLflow variables configure two engines:

* ``pyarrow``: exactly MLflow's call (:mod:`.pyarrow_engine`). It needs a JVM, ``libhdfs.so``
  (Apache's Hadoop binary tarball; no package registry ships it) and Hadoop's jars on ``CLASSPATH``
  (filled from ``hadoop classpath --glob`` when unset).
* ``hdfs-native``: a JVM-free client speaking Hadoop RPC itself (:mod:`.native_engine`).

``engine="auto"`` (the default, or ``ARTIFACT_FS_HDFS_ENGINE``) takes pyarrow when its native
libraries can be found and hdfs-native otherwise (:mod:`.detection`). Options and the transfer
policy's connect limits are :mod:`.config`; what both engines share is :mod:`.base`.

No call may hang on an unreachable NameNode: both engines get bounded connection retries unless
the user's Hadoop configuration says otherwise, and a NameNode named with an explicit port is probed
with the policy's connect timeout before the client is built.
"""

from __future__ import annotations

from fsspec import AbstractFileSystem

from artifact_fs.backends.hdfs.base import ForkGuard, HdfsFile, HdfsFileSystemBase, probe_namenode
from artifact_fs.backends.hdfs.config import (
    CAPABILITIES,
    ENGINE_VARIABLE,
    ENGINES,
    STREAM_CHUNK_SIZE,
    Engine,
    HdfsOptions,
    connect_limits,
    fs_path,
    hdfs_native_config,
    namenode_url,
    options,
    pyarrow_arguments,
)
from artifact_fs.backends.hdfs.detection import (
    choose_engine,
    hdfs_native_unavailable_reason,
    prepare_jvm_environment,
    pyarrow_unavailable_reason,
)
from artifact_fs.backends.hdfs.kerberos import login as kerberos_login
from artifact_fs.backends.hdfs.native_engine import HdfsNativeFile, HdfsNativeFileSystem
from artifact_fs.backends.hdfs.pyarrow_engine import PyarrowHdfsFile, PyarrowHdfsFileSystem


def filesystem(options: HdfsOptions) -> AbstractFileSystem:
    """The configured filesystem of the chosen engine."""
    engine = choose_engine(options.get("engine", "auto"))
    scheme, host, port = options.get("scheme", "hdfs"), options.get("host"), options.get("port")
    _, connect_timeout = connect_limits(options)
    # A bad ticket cache is named here, before either client (or libhdfs's JVM) tries to use it.
    principal = kerberos_login(
        options.get("kerb_ticket"),
        options.get("user"),
        options.get("extra_conf"),
        options.get("hadoop_conf_dir"),
    )
    if engine == "pyarrow":
        probe_namenode(host, port, connect_timeout)
        prepare_jvm_environment()
        return PyarrowHdfsFileSystem(
            scheme=scheme,
            host=host,
            port=port,
            arrow_arguments=pyarrow_arguments(options),
            kerberos=principal is not None,
        )
    return HdfsNativeFileSystem(
        scheme=scheme,
        host=host,
        port=port,
        user=options.get("user"),
        kerb_ticket=options.get("kerb_ticket"),
        kerb_principal=principal,
        config=hdfs_native_config(options),
        connect_timeout=connect_timeout,
        transfer_timeout=options.get("transfer_timeout"),
        hadoop_conf_dir=options.get("hadoop_conf_dir"),
    )


__all__ = [
    "CAPABILITIES",
    "ENGINES",
    "ENGINE_VARIABLE",
    "STREAM_CHUNK_SIZE",
    "Engine",
    "ForkGuard",
    "HdfsFile",
    "HdfsFileSystemBase",
    "HdfsNativeFile",
    "HdfsNativeFileSystem",
    "HdfsOptions",
    "PyarrowHdfsFile",
    "PyarrowHdfsFileSystem",
    "choose_engine",
    "filesystem",
    "fs_path",
    "hdfs_native_config",
    "hdfs_native_unavailable_reason",
    "namenode_url",
    "options",
    "pyarrow_arguments",
    "pyarrow_unavailable_reason",
]
