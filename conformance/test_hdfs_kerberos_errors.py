"""Kerberos failures on the Kerberized cluster, with both engines: one line saying which, at once.

No ticket cache, an expired ticket and a wrong MLFLOW_KERBEROS_USER are refused before either client
runs (``artifact_fs/backends/hdfs/kerberos.py``), so libhdfs's JVM never prints a stack trace for
them. A cluster that wants Kerberos met by a simple-auth client is the NameNode's refusal of
simple authentication (for pyarrow, this process's simple-auth JVM: ``backend_hdfs_pyarrow``). A
ticket for another principal is in ``test_hdfs_kerberos.py`` (it needs a Kerberos JVM for pyarrow).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from artifact_fs.backends import hdfs
from artifact_fs.uris import parse
from conformance.backends.hdfs import USER, KerberizedDeployment

pytestmark = pytest.mark.hdfs_kerberos
ENGINES = ["hdfs-native", "pyarrow"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "pyarrow":
        request.getfixturevalue("backend_hdfs_pyarrow")  # libhdfs found; this process's JVM is simple-auth
    return str(request.param)


def refused(action: Callable[[], object]) -> str:
    started = time.monotonic()
    with pytest.raises(PermissionError) as error:
        action()
    assert time.monotonic() - started < 15, "a Kerberos failure must not hang"
    message = str(error.value)
    assert "\n" not in message and "\tat " not in message, message
    assert message.startswith("[Errno 13] Kerberos: "), message
    return message


def connect(deployment: KerberizedDeployment, engine: str, environ: dict[str, str]) -> object:
    environ = {hdfs.ENGINE_VARIABLE: engine, **environ}
    fs = hdfs.filesystem(hdfs.options(parse(f"{deployment.url}/kerberos-errors"), environ))
    return fs.ls("/")


def test_no_ticket_cache(kerberized_hdfs: KerberizedDeployment, engine: str, tmp_path: Path) -> None:
    missing = tmp_path / "krb5cc_missing"
    message = refused(lambda: connect(kerberized_hdfs, engine, kerberized_hdfs.client_environ(missing)))
    assert f"no ticket cache at {missing}; run kinit" in message


def test_an_expired_ticket(kerberized_hdfs: KerberizedDeployment, engine: str) -> None:
    cache = kerberized_hdfs.ticket(USER, lifetime="1s")
    time.sleep(1.5)
    message = refused(lambda: connect(kerberized_hdfs, engine, kerberized_hdfs.client_environ(cache)))
    assert f"the ticket for {USER}@" in message and "expired at" in message


def test_a_wrong_kerberos_user(kerberized_hdfs: KerberizedDeployment, engine: str) -> None:
    cache = kerberized_hdfs.ticket(USER)
    environ = kerberized_hdfs.client_environ(cache, user="mallory")
    message = refused(lambda: connect(kerberized_hdfs, engine, environ))
    assert "MLFLOW_KERBEROS_USER='mallory' does not match" in message and f"holds {USER}@" in message


def test_a_kerberized_cluster_met_without_kerberos(
    kerberized_hdfs: KerberizedDeployment, engine: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No ticket and a simple-auth client configuration (no HADOOP_CONF_DIR), as on a laptop: the
    NameNode's own refusal of simple authentication, probed after hdfs-native's bare hang-up."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    environ = {"KRB5_CONFIG": str(kerberized_hdfs.krb5_conf)}
    message = refused(lambda: connect(kerberized_hdfs, engine, environ))
    assert "wants Kerberos (SIMPLE authentication is not enabled. Available:[" in message, message
    assert "MLFLOW_KERBEROS_TICKET_CACHE" in message and "HADOOP_CONF_DIR" in message


def test_kerberos_configured_without_kinit(
    kerberized_hdfs: KerberizedDeployment, engine: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The client configuration says Kerberos, but nobody ran kinit (the default cache is empty)."""
    missing = tmp_path / "krb5cc_default"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{missing}")
    environ = kerberized_hdfs.client_environ(None, None)
    message = refused(lambda: connect(kerberized_hdfs, engine, environ))
    assert f"no ticket cache at {missing}; run kinit" in message
