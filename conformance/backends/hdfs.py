"""HDFS on a real MiniDFSCluster (one NameNode, one DataNode), through each engine; and the same
cluster Kerberized, against a real MIT KDC (``hdfs_kerberos`` marker).

``hdfs-native`` always runs. ``hdfs-pyarrow`` (MLflow's own client) needs a JVM and ``libhdfs.so``,
which no package registry ships as a binary: ``scripts/install/45-libhdfs.sh`` builds it from Apache's
sources. Where it still cannot be found its tests are reported as skipped with the reason (the only
skip the suite allows) and the cluster is not started for it; in CI that is a failure.

Kerberos: libhdfs's JVM reads its Kerberos switch (``hadoop.security.authentication`` from
core-site.xml on ``CLASSPATH``) and krb5.conf once, when it starts, and then serves every client of
the process; a JVM cannot be both a simple-auth and a Kerberos client. So ``hdfs-kerberos-native``
runs in the test process beside the simple-auth specs, and ``hdfs-kerberos-pyarrow`` runs in a child
pytest (``conformance/test_hdfs_kerberos_libhdfs.py`` starts it) whose environment is a Kerberos
client's (``HADOOP_CONF_DIR``, ``KRB5_CONFIG``) and which reuses the running cluster and KDC, named in
``KERBEROS_CHILD_VARIABLE``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from artifact_fs.backends import hdfs
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers import hdfs as minidfs
from conformance.servers import kdc as kerberos_kdc
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
HDFS_KERBEROS_NATIVE = BackendSpec(
    id="hdfs-kerberos-native", mark="hdfs_kerberos", capabilities=hdfs.CAPABILITIES, xfail=HDFS_NATIVE.xfail
)
HDFS_KERBEROS_PYARROW = BackendSpec(
    id="hdfs-kerberos-pyarrow", mark="hdfs_kerberos", capabilities=hdfs.CAPABILITIES, xfail=HDFS_PYARROW.xfail
)
KERBEROS_CHILD_VARIABLE = "ARTIFACT_FS_TEST_KERBEROS_HDFS"
"""Set (to a running cluster's description) only in the child pytest of the Kerberos libhdfs run."""
IN_KERBEROS_CHILD = bool(os.environ.get(KERBEROS_CHILD_VARIABLE))
SPECS = [HDFS_KERBEROS_PYARROW] if IN_KERBEROS_CHILD else [HDFS_NATIVE, HDFS_PYARROW, HDFS_KERBEROS_NATIVE]
USER, OTHER_USER = "alice", "bob"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hdfs_kerberos: HDFS with Kerberos (MiniDFSCluster and an MIT KDC)")


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


def require_pyarrow_engine() -> None:
    """libhdfs's environment set, or the test fails in CI (skips elsewhere) naming what is missing."""
    # The JVM reads these when libhdfs starts it (once per process); values the user set win.
    for name, value in minidfs.libhdfs_environ().items():
        os.environ.setdefault(name, value)
    reason = hdfs.pyarrow_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pyarrow HDFS engine unavailable in CI (scripts/install/45-libhdfs.sh): {reason}")
        pytest.skip(f"pyarrow HDFS engine unavailable here: {reason}")


@pytest.fixture(scope="session")
def backend_hdfs_pyarrow(request: pytest.FixtureRequest) -> BackendUnderTest:
    require_pyarrow_engine()
    server: ServerProcess = request.getfixturevalue("minidfs_server")
    return _under_test(HDFS_PYARROW, server, "pyarrow")


@pytest.fixture(params=["hdfs-native", "pyarrow"])
def backend_hdfs_either(request: pytest.FixtureRequest) -> BackendUnderTest:
    """artifact_fs on the one MiniDFSCluster through each engine, for tests that run on both."""
    name = "backend_hdfs_native" if request.param == "hdfs-native" else "backend_hdfs_pyarrow"
    backend: BackendUnderTest = request.getfixturevalue(name)
    return backend


@dataclass
class KerberizedDeployment:
    """The Kerberized cluster as its tests see it: where it is, and tickets on demand."""

    url: str
    conf_dir: Path
    kdc_dir: Path
    keytab: Path
    """alice's and bob's keys: ``kinit -k`` makes their ticket caches."""
    caches: Path

    @property
    def kdc(self) -> kerberos_kdc.Kdc:
        return kerberos_kdc.Kdc(server=None, directory=self.kdc_dir)  # type: ignore[arg-type]

    @property
    def krb5_conf(self) -> Path:
        return self.kdc.krb5_conf

    def ticket(self, user: str, lifetime: str | None = None) -> Path:
        """A new file ticket cache holding ``user``'s TGT."""
        return self.kdc.kinit(user, self.keytab, self.caches / f"{user}-{os.urandom(4).hex()}.cc", lifetime)

    def client_environ(self, cache: Path | None, user: str | None = USER) -> dict[str, str]:
        """MLflow's variables and the standard Hadoop/Kerberos ones, as a user of this cluster sets them."""
        environ = {"KRB5_CONFIG": str(self.krb5_conf), "HADOOP_CONF_DIR": str(self.conf_dir)}
        if cache is not None:
            environ["MLFLOW_KERBEROS_TICKET_CACHE"] = str(cache)
        if user is not None:
            environ["MLFLOW_KERBEROS_USER"] = user
        return environ

    def to_json(self) -> str:
        return json.dumps({name: str(value) for name, value in vars(self).items()})

    @classmethod
    def from_json(cls, text: str) -> KerberizedDeployment:
        values = json.loads(text)
        return cls(url=values.pop("url"), **{name: Path(value) for name, value in values.items()})


@pytest.fixture(scope="session")
def kerberized_hdfs(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KerberizedDeployment]:
    """A KDC and a Kerberized MiniDFSCluster, started once (or, in the child run, the parent's)."""
    described = os.environ.get(KERBEROS_CHILD_VARIABLE)
    if described:
        yield KerberizedDeployment.from_json(described)
        return
    directory = tmp_path_factory.mktemp("kerberos")
    kdc = kerberos_kdc.start_kdc(server_log_dir, directory / "kdc")
    previous = os.environ.get("KRB5_CONFIG")
    try:
        cluster = minidfs.start_kerberized_minidfs(server_log_dir, directory / "minidfs", kdc)
        try:
            (directory / "caches").mkdir()
            deployment = KerberizedDeployment(
                url=cluster.url,
                conf_dir=cluster.conf_dir,
                kdc_dir=kdc.directory,
                keytab=kdc.add_principals(directory / "users.keytab", USER, OTHER_USER),
                caches=directory / "caches",
            )
            # hdfs-native's libgssapi finds the test realm's KDC through KRB5_CONFIG, as a user's would.
            os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)
            yield deployment
        finally:
            cluster.stop()
    finally:
        if previous is None:
            os.environ.pop("KRB5_CONFIG", None)
        else:
            os.environ["KRB5_CONFIG"] = previous
        kdc.stop()


def _kerberos_under_test(
    spec: BackendSpec, deployment: KerberizedDeployment, engine: str
) -> BackendUnderTest:
    cache = deployment.ticket(USER)
    environ = {hdfs.ENGINE_VARIABLE: engine, **deployment.client_environ(cache)}
    return BackendUnderTest(
        spec=spec,
        root_url=f"{deployment.url}/kerberos-suite",
        storage_options={
            "engine": engine,
            "kerb_ticket": str(cache),
            "user": USER,
            "hadoop_conf_dir": str(deployment.conf_dir),
        },
        environ=environ,
        details={"deployment": deployment, "namenode_url": deployment.url, "engine": engine},
    )


@pytest.fixture(scope="session")
def backend_hdfs_kerberos_native(kerberized_hdfs: KerberizedDeployment) -> BackendUnderTest:
    return _kerberos_under_test(HDFS_KERBEROS_NATIVE, kerberized_hdfs, "hdfs-native")


@pytest.fixture(scope="session")
def backend_hdfs_kerberos_pyarrow(kerberized_hdfs: KerberizedDeployment) -> BackendUnderTest:
    if not IN_KERBEROS_CHILD:
        pytest.fail(
            "hdfs-kerberos-pyarrow runs only in the child pytest of "
            "conformance/test_hdfs_kerberos_libhdfs.py "
            "(libhdfs's JVM of this process is not a Kerberos client)"
        )
    return _kerberos_under_test(HDFS_KERBEROS_PYARROW, kerberized_hdfs, "pyarrow")


def kerberos_child_environ(deployment: KerberizedDeployment) -> dict[str, str]:
    """The environment of the child pytest that runs the suite through libhdfs with Kerberos: a
    Kerberos client's (HADOOP_CONF_DIR, KRB5_CONFIG; no default ticket), libhdfs from the install
    scripts, and the running cluster."""
    libhdfs = minidfs.libhdfs_environ()
    if not libhdfs:
        reason = (
            hdfs.pyarrow_unavailable_reason() or "libhdfs.so is not built (scripts/install/45-libhdfs.sh)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"pyarrow HDFS engine unavailable in CI (scripts/install/45-libhdfs.sh): {reason}")
        pytest.skip(f"pyarrow HDFS engine unavailable here: {reason}")
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CLASSPATH", "LIBHDFS_OPTS", "MLFLOW_KERBEROS_TICKET_CACHE", "MLFLOW_KERBEROS_USER"}
    }
    environ.update(libhdfs)
    environ.update(deployment.client_environ(None, None))
    environ["KRB5CCNAME"] = f"FILE:{deployment.caches / 'no-default-ticket'}"
    environ[KERBEROS_CHILD_VARIABLE] = deployment.to_json()
    return environ
