"""HDFS options: MLflow's variables mapped as HdfsArtifactRepository maps them, engine choice, limits."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from artifact_fs import uris
from artifact_fs.backends import BackendUnavailableError, hdfs
from artifact_fs.policy import TransferPolicy

DEFAULT_POLICY = TransferPolicy()


def _options(uri: str, environ: dict[str, str] | None = None, **overrides: Any) -> hdfs.HdfsOptions:
    return hdfs.options(uris.parse(uri), environ or {}, **overrides)


@pytest.mark.parametrize(
    ("uri", "host", "port"),
    [
        ("hdfs://namenode:8020/a/b", "hdfs://namenode", 8020),
        ("hdfs://namenode/a/b", "hdfs://namenode", 0),
        ("hdfs:/a/b", "default", 0),
        ("hdfs:///a/b", "default", 0),
        ("viewfs://cluster/a", "viewfs://cluster", 0),
    ],
)
def test_pyarrow_arguments_match_mlflow_host_and_port(uri: str, host: str, port: int) -> None:
    arguments = hdfs.pyarrow_arguments(_options(uri))
    assert (arguments["host"], arguments["port"]) == (host, port)
    assert arguments["user"] is None
    assert arguments["kerb_ticket"] is None


def test_kerberos_variables_map_to_user_and_ticket() -> None:
    environ = {"MLFLOW_KERBEROS_USER": "alice", "MLFLOW_KERBEROS_TICKET_CACHE": "/tmp/krb5cc_1000"}
    arguments = hdfs.pyarrow_arguments(_options("hdfs://nn:8020/x", environ))
    assert arguments["user"] == "alice"
    assert arguments["kerb_ticket"] == "/tmp/krb5cc_1000"


def test_extra_conf_is_parsed_from_key_value_pairs_and_wins_over_retry_defaults() -> None:
    environ = {"MLFLOW_PYARROW_EXTRA_CONF": "dfs.replication=2,ipc.client.connect.max.retries=7,k=a=b"}
    options = _options("hdfs://nn:8020/x", environ)
    assert options["extra_conf"] == {
        "dfs.replication": "2",
        "ipc.client.connect.max.retries": "7",
        "k": "a=b",  # MLflow splits each pair on the first '=' only
    }
    extra = hdfs.pyarrow_arguments(options)["extra_conf"]
    assert extra["ipc.client.connect.max.retries"] == "7"
    assert extra["ipc.client.connect.max.retries.on.timeouts"] == str(DEFAULT_POLICY.max_retries)
    assert hdfs.hdfs_native_config(options)["dfs.replication"] == "2"


def test_extra_conf_pair_without_equals_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="MLFLOW_PYARROW_EXTRA_CONF") as info:
        _options("hdfs://nn:8020/x", {"MLFLOW_PYARROW_EXTRA_CONF": "a=1,broken"})
    assert "'broken'" in str(info.value)


def test_unset_extra_conf_is_none_as_in_mlflow() -> None:
    assert _options("hdfs://nn:8020/x")["extra_conf"] is None


def test_hdfs_native_retries_are_bounded_by_default() -> None:
    config = hdfs.hdfs_native_config(_options("hdfs://nn:8020/x"))
    assert config["dfs.client.failover.max.attempts"] == str(DEFAULT_POLICY.max_retries)
    assert int(config["dfs.client.failover.sleep.max.millis"]) <= 1000


def test_connect_limits_come_from_the_transfer_policy() -> None:
    """MLflow's retry variable bounds NameNode connect retries; the policy's connect timeout, handshakes."""
    options = _options("hdfs://nn:8020/x", {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"})
    assert (options["connect_retries"], options["connect_timeout"]) == (2, DEFAULT_POLICY.connect_timeout)
    extra = hdfs.pyarrow_arguments(options)["extra_conf"]
    assert extra["ipc.client.connect.max.retries"] == "2"
    assert extra["ipc.client.connect.timeout"] == str(int(DEFAULT_POLICY.connect_timeout * 1000))
    assert hdfs.hdfs_native_config(options)["dfs.client.failover.max.attempts"] == "2"


def test_a_given_policy_is_used_and_explicit_options_win_over_it() -> None:
    policy = TransferPolicy(connect_timeout=1.5, max_retries=1)
    parsed = uris.parse("hdfs://nn:8020/x")
    options = hdfs.options(parsed, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9"}, policy=policy)
    assert (options["connect_retries"], options["connect_timeout"]) == (1, 1.5)
    options = hdfs.options(parsed, {}, policy=policy, connect_retries=4, connect_timeout=2.0)
    assert (options["connect_retries"], options["connect_timeout"]) == (4, 2.0)


def test_the_users_hadoop_configuration_wins_over_the_policy() -> None:
    environ = {
        "MLFLOW_PYARROW_EXTRA_CONF": "dfs.client.failover.max.attempts=12,ipc.client.connect.timeout=60000"
    }
    options = _options("hdfs://nn:8020/x", environ)
    assert hdfs.hdfs_native_config(options)["dfs.client.failover.max.attempts"] == "12"
    assert hdfs.pyarrow_arguments(options)["extra_conf"]["ipc.client.connect.timeout"] == "60000"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"engine": "jvm"}, "unknown HDFS engine"),
        ({"connect_retries": -1}, "connect_retries"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"extra_conf": {"a": 1}}, "extra_conf"),
        ({"bogus": 1}, "unknown HDFS option"),
    ],
)
def test_bad_options_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _options("hdfs://nn:8020/x", **overrides)


def test_engine_variable_is_validated() -> None:
    assert _options("hdfs://nn:8020/x", {hdfs.ENGINE_VARIABLE: "hdfs-native"})["engine"] == "hdfs-native"
    with pytest.raises(ValueError, match=hdfs.ENGINE_VARIABLE):
        _options("hdfs://nn:8020/x", {hdfs.ENGINE_VARIABLE: "java"})


@pytest.mark.parametrize(
    ("uri", "path"),
    [("hdfs://nn:8020/a/b/", "/a/b"), ("hdfs://nn:8020", "/"), ("hdfs:/a", "/a"), ("viewfs://c/x/y", "/x/y")],
)
def test_fs_path_is_the_absolute_uri_path(uri: str, path: str) -> None:
    parsed = uris.parse(uri)
    assert hdfs.fs_path(parsed, hdfs.options(parsed, {})) == path


def test_pyarrow_is_unavailable_without_libhdfs(tmp_path: Path) -> None:
    reason = hdfs.pyarrow_unavailable_reason({"ARROW_LIBHDFS_DIR": str(tmp_path), "JAVA_HOME": str(tmp_path)})
    if reason is not None:  # a machine with libhdfs on the linker path would find it
        assert "libhdfs" in reason or "libjvm" in reason


def test_pyarrow_needs_libjvm_when_libhdfs_is_present(tmp_path: Path) -> None:
    (tmp_path / "libhdfs.so").write_bytes(b"")
    reason = hdfs.pyarrow_unavailable_reason({"ARROW_LIBHDFS_DIR": str(tmp_path), "JAVA_HOME": str(tmp_path)})
    assert reason is not None and "libjvm.so" in reason
    java = tmp_path / "java"
    (java / "lib" / "server").mkdir(parents=True)
    (java / "lib" / "server" / "libjvm.so").write_bytes(b"")
    environ = {"ARROW_LIBHDFS_DIR": str(tmp_path), "JAVA_HOME": str(java), "CLASSPATH": "/opt/hadoop.jar"}
    assert hdfs.pyarrow_unavailable_reason(environ) is None


def test_pyarrow_needs_hadoop_jars_on_the_classpath(tmp_path: Path) -> None:
    (tmp_path / "libhdfs.so").write_bytes(b"")
    (tmp_path / "lib" / "server").mkdir(parents=True)
    (tmp_path / "lib" / "server" / "libjvm.so").write_bytes(b"")
    environ = {"ARROW_LIBHDFS_DIR": str(tmp_path), "JAVA_HOME": str(tmp_path), "PATH": str(tmp_path)}
    reason = hdfs.pyarrow_unavailable_reason(environ)
    assert reason is not None and "CLASSPATH" in reason and "hadoop classpath --glob" in reason
    # A Hadoop installation can compute it, so the engine is usable.
    hadoop = tmp_path / "hadoop-home" / "bin" / "hadoop"
    hadoop.parent.mkdir(parents=True)
    hadoop.write_text("#!/bin/sh\necho /opt/hadoop/share/hadoop/common/hadoop-common.jar\n")
    hadoop.chmod(0o755)
    assert hdfs.pyarrow_unavailable_reason({**environ, "HADOOP_HOME": str(hadoop.parent.parent)}) is None


def test_auto_engine_falls_back_to_hdfs_native_when_pyarrow_cannot_load(tmp_path: Path) -> None:
    environ = {"ARROW_LIBHDFS_DIR": str(tmp_path), "JAVA_HOME": str(tmp_path)}
    if hdfs.pyarrow_unavailable_reason(environ) is None:
        pytest.fail(
            "this machine unexpectedly has libhdfs on its linker path; the test needs a machine without"
        )
    assert hdfs.choose_engine("auto", environ) == "hdfs-native"
    with pytest.raises(BackendUnavailableError, match="pyarrow HDFS engine cannot be used: libhdfs"):
        hdfs.choose_engine("pyarrow", environ)


def test_hdfs_native_refuses_a_kerberos_user_it_cannot_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HADOOP_USER_NAME", "bob")
    with pytest.raises(ValueError, match="HADOOP_USER_NAME=alice"):
        hdfs.HdfsNativeFileSystem(host="127.0.0.1", port=None, user="alice", skip_instance_cache=True)


def test_hadoop_configuration_directory_comes_from_the_environment(tmp_path: Path) -> None:
    assert _options("hdfs:/a", {"HADOOP_HOME": "/opt/hadoop"})["hadoop_conf_dir"] == "/opt/hadoop/etc/hadoop"
    environ = {"HADOOP_HOME": "/opt/hadoop", "HADOOP_CONF_DIR": str(tmp_path)}
    assert _options("hdfs:/a", environ)["hadoop_conf_dir"] == str(tmp_path)


def test_default_filesystem_without_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fs.defaultFS"):
        hdfs.filesystem(_options("hdfs:/a/b", {"HADOOP_CONF_DIR": str(tmp_path)}, engine="hdfs-native"))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_namenode_fails_within_seconds() -> None:
    """A closed port is refused at once; hdfs-native alone would retry for about three minutes."""
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match=f"127.0.0.1:{port}"):
        hdfs.filesystem(_options(f"hdfs://127.0.0.1:{port}/x", engine="hdfs-native"))
    assert time.monotonic() - started < 5


def test_hdfs_native_retries_stay_bounded_past_the_probe() -> None:
    """The client's own retry keys: a NameNode that vanishes after the probe still fails in seconds."""
    from hdfs_native import Client

    port = _closed_port()
    client = Client(
        f"hdfs://127.0.0.1:{port}", hdfs.hdfs_native_config(_options(f"hdfs://127.0.0.1:{port}/x"))
    )
    started = time.monotonic()
    with pytest.raises(OSError, match="Connection refused"):
        client.get_file_info("/")
    assert time.monotonic() - started < 10


def test_store_on_an_unreachable_namenode_fails_within_seconds() -> None:
    from artifact_fs.store import ArtifactStore

    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="HDFS NameNode"):
        ArtifactStore(f"hdfs://127.0.0.1:{port}/experiments/1", engine="hdfs-native").list_artifacts()
    assert time.monotonic() - started < 5


def test_unset_transfer_timeout_keeps_hadoops_socket_timeouts() -> None:
    options = _options("hdfs://nn:8020/x")
    assert options["transfer_timeout"] is None
    extra = hdfs.pyarrow_arguments(options)["extra_conf"]
    assert "dfs.client.socket-timeout" not in extra and "ipc.client.rpc-timeout.ms" not in extra
    assert "dfs.client.socket-timeout" not in hdfs.hdfs_native_config(options)


def test_transfer_timeout_becomes_hadoops_socket_timeouts_for_libhdfs() -> None:
    options = _options("hdfs://nn:8020/x", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30"})
    extra = hdfs.pyarrow_arguments(options)["extra_conf"]
    assert extra["dfs.client.socket-timeout"] == "30000"  # each DataNode read
    assert extra["dfs.datanode.socket.write.timeout"] == "30000"  # each DataNode write
    assert extra["ipc.client.rpc-timeout.ms"] == "30000"  # each NameNode call


def test_transfer_timeout_reaches_hdfs_native_as_the_key_it_reads() -> None:
    config = hdfs.hdfs_native_config(
        _options("hdfs://nn/x", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "5"})
    )
    assert config["dfs.client.socket-timeout"] == "5000"
    assert "ipc.client.rpc-timeout.ms" not in config  # hdfs-native has no such setting


def test_minus_one_transfer_timeout_sets_no_socket_timeouts() -> None:
    options = _options("hdfs://nn/x", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1"})
    assert options["transfer_timeout"] is None
    assert "dfs.client.socket-timeout" not in hdfs.pyarrow_arguments(options)["extra_conf"]


def test_the_users_extra_conf_wins_over_the_transfer_timeout() -> None:
    environ = {
        "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "5",
        "MLFLOW_PYARROW_EXTRA_CONF": "dfs.client.socket-timeout=90000",
    }
    options = _options("hdfs://nn/x", environ)
    assert hdfs.pyarrow_arguments(options)["extra_conf"]["dfs.client.socket-timeout"] == "90000"
    assert hdfs.pyarrow_arguments(options)["extra_conf"]["ipc.client.rpc-timeout.ms"] == "5000"
    assert hdfs.hdfs_native_config(options)["dfs.client.socket-timeout"] == "90000"


@pytest.mark.parametrize("bad", [0, -2.5, "10"])
def test_a_bad_transfer_timeout_option_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="transfer_timeout"):
        _options("hdfs://nn/x", transfer_timeout=bad)
