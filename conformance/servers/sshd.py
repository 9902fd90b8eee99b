"""Debian's OpenSSH sshd for the SFTP suite: a free port, a throwaway host key, a test user.

As root (CI) the fixture creates a Unix user with a unique name for the session (removed on
teardown), key and password authentication, and runs ``/usr/sbin/sshd -D -e`` with its own config.
Without root, :mod:`conformance.servers.asyncssh_sftpd` is the fallback, and says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError, tcp_banner

SSHD = "/usr/sbin/sshd"
PASSWORD = "s3cret-pass"


@dataclass
class SSHServer:
    """A running SFTP server and everything a client needs to trust it and log in."""

    process: ServerProcess
    kind: str
    """``openssh`` or ``asyncssh`` (the fallback)."""
    user: str
    password: str
    client_key: str
    host_public_key: str
    root: str
    """Absolute path on the server under which tests write."""
    workdir: Path
    cleanup: list[list[str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.process.port

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        return f"[{host}]:{self.port} {self.host_public_key}\n{host} {self.host_public_key}\n"

    def stop(self) -> None:
        self.process.stop()
        for command in self.cleanup:
            subprocess.run(command, check=False, capture_output=True)


def openssh_available() -> bool:
    """OpenSSH can run here: root (to create the test user) and Debian's sshd installed."""
    return os.geteuid() == 0 and os.path.exists(SSHD)


def keygen(path: Path, kind: str = "ed25519") -> str:
    """A key pair at ``path`` (and ``path.pub``); returns the public key line.

    Client keys are RSA: MLflow's pysftp loads only RSA and DSS private keys.
    """
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "artifact-fs-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _add_user(user: str, home: Path) -> None:
    for _ in range(20):  # useradd fails while another process holds /etc/passwd's lock
        completed = subprocess.run(
            ["useradd", "-M", "-d", str(home), "-s", "/bin/sh", user],
            check=False,
            capture_output=True,
            text=True,
        )
        if completed.returncode == 0:
            break
        if "lock" not in completed.stderr:
            raise ServerStartError(f"useradd {user} failed: {completed.stderr.strip()}")
        time.sleep(0.2)
    else:
        raise ServerStartError(f"useradd {user}: /etc/passwd stayed locked")
    subprocess.run(["chpasswd"], input=f"{user}:{PASSWORD}", text=True, check=True, capture_output=True)
    shutil.chown(home, user=user, group=user)


def start_openssh(log_dir: Path, workdir: Path) -> SSHServer:
    """sshd on a free port, as servers.md section 4a describes, with a user made for this session."""
    if not openssh_available():
        raise ServerStartError(f"OpenSSH needs root and {SSHD}; run scripts/install/05-system.sh as root")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    user = f"afsftp{secrets.token_hex(3)}"
    home = workdir / "home"
    home.mkdir(parents=True)
    (workdir / "authkeys").mkdir()
    host_public = keygen(workdir / "ssh_host_ed25519_key")
    client_public = keygen(workdir / "client_key", "rsa")
    (workdir / "authkeys" / user).write_text(client_public + "\n")
    _add_user(user, home)
    cleanup = [["userdel", "--force", user]]  # --force: sshd children of cached clients may linger
    workdir.chmod(0o755)

    def command(ports: dict[str, int]) -> list[str]:
        config = workdir / "sshd_config"
        config.write_text(
            f"Port {ports['port']}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {workdir / 'ssh_host_ed25519_key'}\n"
            f"PidFile {workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {workdir / 'authkeys'}/%u\n"
            f"AllowUsers {user}\n"
            "StrictModes no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "PermitRootLogin no\n"
            "Subsystem sftp internal-sftp\n"
            "MaxStartups 100:30:200\n"
            "MaxSessions 50\n"
            "LogLevel VERBOSE\n"
        )
        return [SSHD, "-D", "-e", "-f", str(config)]

    process = ServerProcess(
        name="openssh-sshd",
        command=command,
        ready=lambda ports: tcp_banner(ports["port"], b"SSH-2.0-OpenSSH"),
        log_dir=log_dir,
        timeout=30,
    )
    try:
        process.start()
    except BaseException:
        for step in cleanup:
            subprocess.run(step, check=False, capture_output=True)
        raise
    return SSHServer(
        process=process,
        kind="openssh",
        user=user,
        password=PASSWORD,
        client_key=str(workdir / "client_key"),
        host_public_key=host_public,
        root=str(home),
        workdir=workdir,
        cleanup=cleanup,
    )
