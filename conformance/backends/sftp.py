"""SFTP on Debian's OpenSSH sshd (as root, as in CI), or the asyncssh server as a reported fallback."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from artifact_fs.backends import sftp
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers.sshd import SSHServer, openssh_available, start_openssh

USE_OPENSSH = openssh_available()
SFTP = BackendSpec(id="sftp" if USE_OPENSSH else "sftp-asyncssh", mark="sftp", capabilities=sftp.CAPABILITIES)
SPECS = [SFTP]


def client_home(server: SSHServer, directory: Path) -> Path:
    """A ``$HOME`` whose ``~/.ssh`` trusts the server and names the test key, as an MLflow user's would."""
    ssh = directory / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "known_hosts").write_text(server.known_hosts_line())
    (ssh / "config").write_text(
        f"Host 127.0.0.1 sftp-suite\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.client_key}\n  UserKnownHostsFile {ssh / 'known_hosts'}\n"
    )
    ssh.chmod(0o700)
    return directory


@pytest.fixture(scope="session")
def sftp_server(server_log_dir: Path) -> Iterator[SSHServer]:
    # Not under pytest's temp root: that is mode 0700, and the test user must reach its home.
    workdir = Path(tempfile.mkdtemp(prefix="af-sftp-"))
    try:
        if USE_OPENSSH:
            server = start_openssh(server_log_dir, workdir)
        else:
            from conformance.servers.asyncssh_sftpd import start_asyncssh

            warnings.warn(
                "SFTP tests run against the asyncssh fallback server, not OpenSSH (needs root and "
                "/usr/sbin/sshd; run scripts/install/05-system.sh as root)",
                stacklevel=1,
            )
            print("\nSFTP: using the asyncssh fallback server (no root or no /usr/sbin/sshd)")
            server = start_asyncssh(server_log_dir, workdir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _running(server: SSHServer, home_dir: Path) -> BackendUnderTest:
    sftp_server = server
    home = client_home(sftp_server, home_dir)
    known_hosts = str(home / ".ssh" / "known_hosts")
    return BackendUnderTest(
        spec=SFTP,
        root_url=f"sftp://{sftp_server.user}@127.0.0.1:{sftp_server.port}{sftp_server.root.rstrip('/')}/suite",
        storage_options={"client_keys": [sftp_server.client_key], "known_hosts": known_hosts},
        environ={"HOME": str(home), "ARTIFACT_FS_SFTP_KNOWN_HOSTS": known_hosts},
        details={"server": sftp_server, "home": home, "known_hosts": known_hosts},
    )


@pytest.fixture(scope="session")
def backend_sftp(sftp_server: SSHServer, tmp_path_factory: pytest.TempPathFactory) -> BackendUnderTest:
    return _running(sftp_server, tmp_path_factory.mktemp("sftp-client-home"))


@pytest.fixture(scope="session")
def backend_sftp_asyncssh(
    sftp_server: SSHServer, tmp_path_factory: pytest.TempPathFactory
) -> BackendUnderTest:
    return _running(sftp_server, tmp_path_factory.mktemp("sftp-client-home"))
