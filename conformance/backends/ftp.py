"""FTP on pyftpdlib: plain FTP and explicit FTPS with TLS required on both channels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from artifact_fs.backends import ftp
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers.ftp import PASSWORD, USER, FTPServer, start_ftp

FTP = BackendSpec(id="ftp", mark="ftp", capabilities=ftp.CAPABILITIES)
FTPS = BackendSpec(id="ftps", mark="ftp", capabilities=ftp.CAPABILITIES)
SPECS = [FTP, FTPS]


def _running(server: FTPServer, spec: BackendSpec) -> BackendUnderTest:
    # Credentials go in the options so URLs made by ``fs.unstrip_protocol`` (no password) resolve too;
    # ``details["url_with_password"]`` is the same root as MLflow users write it.
    storage_options: dict[str, object] = {"username": USER, "password": PASSWORD}
    environ: dict[str, str] = {}
    if server.tls:
        assert server.ca_file is not None
        storage_options.update(tls=True, ca_file=server.ca_file)
        environ = {"ARTIFACT_FS_FTP_TLS": "true", "ARTIFACT_FS_FTP_TLS_CA_FILE": server.ca_file}
    return BackendUnderTest(
        spec=spec,
        root_url=f"ftp://{USER}@127.0.0.1:{server.port}/suite",
        storage_options=storage_options,
        environ=environ,
        details={
            "server": server,
            "home": server.home,
            "url_with_password": f"ftp://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/suite",
        },
    )


@pytest.fixture(scope="session")
def ftp_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    server = start_ftp(server_log_dir, tmp_path_factory.mktemp("ftp-data"), tls=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ftps_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    server = start_ftp(server_log_dir, tmp_path_factory.mktemp("ftps-data"), tls=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend_ftp(ftp_server: FTPServer) -> BackendUnderTest:
    return _running(ftp_server, FTP)


@pytest.fixture(scope="session")
def backend_ftps(ftps_server: FTPServer) -> BackendUnderTest:
    return _running(ftps_server, FTPS)
