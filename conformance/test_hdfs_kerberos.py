"""HDFS with Kerberos, on whichever Kerberized deployment this process runs.

In the test process that is ``hdfs-kerberos-native``; in the child pytest started by
``test_hdfs_kerberos_libhdfs.py`` it is ``hdfs-kerberos-pyarrow`` (libhdfs's JVM as a Kerberos
client). The whole conformance suite runs on the same deployments through the ``backend`` fixture;
this file adds what is Kerberos-specific: configuration by environment variables only, a ticket for
another principal, and MLflow's own ``HdfsArtifactRepository`` side by side with artifact_fs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from artifact_fs.store import ArtifactStore
from conformance.backends.hdfs import OTHER_USER, KerberizedDeployment
from conformance.harness import BackendUnderTest
from conformance.servers import hdfs as minidfs
from conformance.test_ftp_mlflow import check_both_ways

pytestmark = [pytest.mark.hdfs_kerberos, pytest.mark.only_backends("hdfs_kerberos")]


def test_the_store_is_configured_by_environment_variables_only(
    backend: BackendUnderTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in backend.environ.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w" * 3_000_000)
    url = backend.fresh_url()
    store = ArtifactStore(url)
    store.log_artifacts(str(tmp_path / "model"), "model")
    assert [(f.path, f.file_size) for f in store.list_artifacts("model")] == [
        ("model/weights.bin", 3_000_000)
    ]
    (tmp_path / "out").mkdir()
    downloaded = Path(store.download_artifacts("model/weights.bin", str(tmp_path / "out")))
    assert downloaded.read_bytes() == b"w" * 3_000_000


def test_a_ticket_for_another_principal_is_refused_by_the_namenode(
    backend: BackendUnderTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """bob's valid ticket authenticates bob, who may not write into alice's artifacts."""
    deployment: KerberizedDeployment = backend.details["deployment"]
    url = backend.fresh_url()
    (tmp_path / "a.txt").write_text("alice's")
    ArtifactStore(url, **backend.storage_options).log_artifact(str(tmp_path / "a.txt"))
    bob = {**backend.storage_options, "kerb_ticket": str(deployment.ticket(OTHER_USER)), "user": OTHER_USER}
    started = time.monotonic()
    with pytest.raises(PermissionError) as refused:
        ArtifactStore(url, **bob).log_artifact(str(tmp_path / "a.txt"), "more")
    assert time.monotonic() - started < 30
    message = str(refused.value)
    assert "\n" not in message and "\tat " not in message
    assert "Permission denied" in message
    if backend.details["engine"] == "hdfs-native":
        assert f"user={OTHER_USER}" in message


@pytest.mark.mlflow
def test_mlflow_and_artifact_fs_agree_on_kerberized_hdfs(backend: BackendUnderTest, tmp_path: Path) -> None:
    """MLflow's HdfsArtifactRepository (its venv, libhdfs) with only MLflow's variables and a Kerberos
    client's environment (CLASSPATH as `hadoop classpath` gives it: the configuration directory first)."""
    deployment: KerberizedDeployment = backend.details["deployment"]
    libhdfs = minidfs.libhdfs_environ()
    if not libhdfs:
        if os.environ.get("CI") == "true":
            pytest.fail("libhdfs.so is not built in CI (scripts/install/45-libhdfs.sh)")
        pytest.skip("libhdfs.so is not built here (scripts/install/45-libhdfs.sh); MLflow needs it")
    environ = {
        **backend.environ,
        **libhdfs,
        "CLASSPATH": f"{deployment.conf_dir}:{libhdfs['CLASSPATH']}",
        "LIBHDFS_OPTS": f"-Djava.security.krb5.conf={deployment.krb5_conf}",
    }
    check_both_ways(backend, backend.root_url, environ, tmp_path)
