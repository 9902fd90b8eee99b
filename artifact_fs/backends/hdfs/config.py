"""HDFS options: MLflow's variables and the transfer policy turned into each engine's arguments.

MLflow's ``HdfsArtifactRepository`` builds ``pyarrow.fs.HadoopFileSystem(host="<scheme>://<host>"
or "default", port=<port> or 0, user=MLFLOW_KERBEROS_USER, kerb_ticket=MLFLOW_KERBEROS_TICKET_CACHE,
extra_conf=MLFLOW_PYARROW_EXTRA_CONF as k=v,k2=v2)``; the same variables configure hdfs-native (the
ticket cache is its ``kerberos_cache``, ``extra_conf`` its Hadoop configuration).

Connecting to a NameNode is bounded by the transfer policy (``connect_timeout``, ``max_retries``)
unless the user's Hadoop configuration (``extra_conf``) says otherwise: Hadoop's own defaults retry
an unreachable NameNode for minutes. ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` becomes Hadoop's
socket timeouts (each read or write on a DataNode socket, each NameNode RPC), so a stalled transfer
fails and a slow one that keeps moving does not; unset, Hadoop's defaults stay (MLflow sets none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from artifact_fs import settings
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(empty_directories=True, exclusive_create=True)

Engine = Literal["auto", "hdfs-native", "pyarrow"]
ENGINES: tuple[str, ...] = settings.HDFS_ENGINES
ENGINE_VARIABLE = settings.ARTIFACT_FS_HDFS_ENGINE.name

STREAM_CHUNK_SIZE = 1024 * 1024
"""MLflow's ARTIFACT_STREAM_CHUNK_SIZE: the unit of HDFS stream copies."""
RETRY_INTERVAL_MILLIS = 200
"""Pause between the Java client's connection attempts (Hadoop's default is 1 s)."""
FAILOVER_SLEEP_BASE_MILLIS = 100
FAILOVER_SLEEP_MAX_MILLIS = 1000
"""hdfs-native's failover back-off: short, so bounded retries also end within seconds."""
NATIVE_TIMEOUT_KEYS = frozenset({"dfs.client.socket-timeout"})
"""The timeout keys hdfs-native reads (0.14); it has no separate write or RPC timeout."""


class HdfsOptions(TypedDict, total=False):
    """Storage options of the HDFS backend (both engines)."""

    engine: Engine
    scheme: str
    """``hdfs`` or ``viewfs``."""
    host: str | None
    """NameNode host, nameservice or viewfs cluster; None for the default filesystem (core-site.xml)."""
    port: int | None
    user: str | None
    """MLFLOW_KERBEROS_USER: pyarrow's ``user``."""
    kerb_ticket: str | None
    """MLFLOW_KERBEROS_TICKET_CACHE: the Kerberos ticket cache path."""
    extra_conf: dict[str, str] | None
    """MLFLOW_PYARROW_EXTRA_CONF: Hadoop configuration keys."""
    connect_retries: int
    """Attempts to reach a NameNode after the first: the policy's ``max_retries``."""
    connect_timeout: float
    """Seconds to wait for a NameNode's TCP handshake: the policy's ``connect_timeout``."""
    transfer_timeout: float | None
    """Seconds a DataNode read or write, or a NameNode RPC, may wait: the policy's ``transfer_timeout``."""
    hadoop_conf_dir: str | None
    """Where hdfs-native reads core-site.xml / hdfs-site.xml: HADOOP_CONF_DIR, else HADOOP_HOME/etc/hadoop."""


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> HdfsOptions:
    """MLflow's HDFS variables for ``uri``, bounded by the transfer policy; explicit keyword arguments win."""
    policy = TransferPolicy.from_environ(environ) if policy is None else policy
    result: HdfsOptions = {
        "engine": settings.ARTIFACT_FS_HDFS_ENGINE.get(environ),  # type: ignore[typeddict-item]
        "scheme": uri.scheme,
        "host": uri.host or None,
        "port": uri.port,
        "user": settings.MLFLOW_KERBEROS_USER.get(environ),
        "kerb_ticket": settings.MLFLOW_KERBEROS_TICKET_CACHE.get(environ),
        "extra_conf": settings.MLFLOW_PYARROW_EXTRA_CONF.get(environ) or None,
        "connect_retries": policy.max_retries,
        "connect_timeout": policy.connect_timeout,
        "transfer_timeout": policy.transfer_timeout_or(None),
        "hadoop_conf_dir": hadoop_conf_dir(environ),
    }
    unknown = set(overrides) - set(HdfsOptions.__annotations__)
    if unknown:
        raise ValueError(
            f"unknown HDFS option(s) {sorted(unknown)}; the options are {sorted(HdfsOptions.__annotations__)}"
        )
    result.update(overrides)  # type: ignore[typeddict-item]
    check(result)
    return result


def hadoop_conf_dir(environ: Mapping[str, str]) -> str | None:
    """The Hadoop configuration directory as libhdfs and hdfs-native look for it."""
    conf_dir = settings.HADOOP_CONF_DIR.get(environ)
    if conf_dir:
        return conf_dir
    home = settings.HADOOP_HOME.get(environ)
    return os.path.join(home, "etc", "hadoop") if home else None


def check(result: HdfsOptions) -> None:
    """Refuse options no engine can use, naming the bad value."""
    if result.get("engine", "auto") not in ENGINES:
        raise ValueError(f"unknown HDFS engine {result.get('engine')!r}; use one of {ENGINES}")
    retries = result.get("connect_retries")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"connect_retries must be a non-negative integer, got {retries!r}")
    timeout = result.get("connect_timeout")
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {timeout!r}")
    transfer = result.get("transfer_timeout")
    if transfer is not None and (not isinstance(transfer, int | float) or transfer <= 0):
        raise ValueError(f"transfer_timeout must be a positive number of seconds or None, got {transfer!r}")
    extra = result.get("extra_conf")
    if extra is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError("extra_conf must map Hadoop configuration keys (str) to values (str)")


def connect_limits(options: HdfsOptions) -> tuple[int, float]:
    """``(connect_retries, connect_timeout)``; the default policy's when the options lack them."""
    default = TransferPolicy()
    return (
        options.get("connect_retries", default.max_retries),
        options.get("connect_timeout", default.connect_timeout),
    )


def pyarrow_arguments(options: HdfsOptions) -> dict[str, Any]:
    """The keyword arguments MLflow passes to ``pyarrow.fs.HadoopFileSystem`` for these options.

    ``host`` is ``"<scheme>://<host>"`` (or ``"default"``: core-site.xml's fs.defaultFS) and ``port``
    0 when absent, as in MLflow's ``hdfs_system``. Bounded IPC retries are added unless given.
    """
    host = options.get("host")
    scheme = options.get("scheme", "hdfs")
    extra_conf = bounded_ipc_retries(options) | transfer_timeouts(options)
    extra_conf.update(options.get("extra_conf") or {})
    return {
        "host": f"{scheme}://{host}" if host else "default",
        "port": options.get("port") or 0,
        "user": options.get("user"),
        "kerb_ticket": options.get("kerb_ticket"),
        "extra_conf": extra_conf,
    }


def bounded_ipc_retries(options: HdfsOptions) -> dict[str, str]:
    """Hadoop's Java client keys that bound connecting to a NameNode (its defaults retry 10 x 45 s)."""
    retries, timeout = connect_limits(options)
    return {
        "ipc.client.connect.max.retries": str(retries),
        "ipc.client.connect.max.retries.on.timeouts": str(retries),
        "ipc.client.connect.timeout": str(int(timeout * 1000)),
        "ipc.client.connect.retry.interval": str(RETRY_INTERVAL_MILLIS),
        "dfs.client.failover.max.attempts": str(retries),
    }


def transfer_timeouts(options: HdfsOptions) -> dict[str, str]:
    """The Java client's socket timeouts (milliseconds) for the transfer timeout; none when unset.

    Each bounds one wait, not a whole transfer: a DataNode read (``dfs.client.socket-timeout``,
    also the write pipeline's acknowledgements), a DataNode write, and a NameNode call. A read that
    timed out on every replica fails then: the Java client would otherwise ask the NameNode for the
    block again three times, after waits of 3 s and more each, so a stall lasted ~30 s.
    """
    timeout = options.get("transfer_timeout")
    if timeout is None:
        return {}
    millis = str(max(1, round(timeout * 1000)))
    return {
        "dfs.client.socket-timeout": millis,
        "dfs.datanode.socket.write.timeout": millis,
        "ipc.client.rpc-timeout.ms": millis,
        "dfs.client.max.block.acquire.failures": "0",
    }


def hdfs_native_config(options: HdfsOptions) -> dict[str, str]:
    """hdfs-native's Hadoop configuration: bounded NameNode retries, then the user's extra_conf."""
    retries, _ = connect_limits(options)
    config = {
        # hdfs-native retries an unreachable NameNode through its failover loop (about 3 minutes by
        # default); these keys bound it, with a short exponential back-off.
        "dfs.client.failover.max.attempts": str(retries),
        "dfs.client.failover.sleep.base.millis": str(FAILOVER_SLEEP_BASE_MILLIS),
        "dfs.client.failover.sleep.max.millis": str(FAILOVER_SLEEP_MAX_MILLIS),
    }
    # hdfs-native reads only dfs.client.socket-timeout: how long a DataNode may send nothing.
    config |= {key: value for key, value in transfer_timeouts(options).items() if key in NATIVE_TIMEOUT_KEYS}
    config.update(options.get("extra_conf") or {})
    return config


def fs_path(uri: ArtifactURI, options: HdfsOptions) -> str:
    """The absolute path inside the filesystem (the URI's path; ``/`` when empty)."""
    path = uri.path or "/"
    return "/" + path.strip("/") if path.strip("/") else "/"


def namenode_url(scheme: str, host: str | None, port: int | None) -> str | None:
    """``hdfs://host[:port]``, or None for the default filesystem of the Hadoop configuration."""
    if not host:
        return None
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
