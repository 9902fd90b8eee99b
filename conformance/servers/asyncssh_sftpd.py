"""Fallback SFTP server for machines without root: asyncssh's SFTP server, chrooted to a directory.

Only used when OpenSSH cannot run (no root to create a user); the suite reports it. Run as
``python -m conformance.servers.asyncssh_sftpd PORT ROOT HOST_KEY AUTHORIZED_KEYS USER PASSWORD``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from conformance.servers.launcher import ServerProcess, tcp_banner
from conformance.servers.sshd import PASSWORD, SSHServer, keygen

USER = "sftptest"


def start_asyncssh(log_dir: Path, workdir: Path) -> SSHServer:
    root = workdir / "root"
    root.mkdir(parents=True)
    host_public = keygen(workdir / "ssh_host_ed25519_key")
    keygen(workdir / "client_key", "rsa")

    def command(ports: dict[str, int]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "conformance.servers.asyncssh_sftpd",
            str(ports["port"]),
            str(root),
            str(workdir / "ssh_host_ed25519_key"),
            str(workdir / "client_key.pub"),
            USER,
            PASSWORD,
        ]

    process = ServerProcess(
        name="asyncssh-sftpd",
        command=command,
        ready=lambda ports: tcp_banner(ports["port"], b"SSH-2.0-"),
        log_dir=log_dir,
        cwd=Path(__file__).resolve().parents[2],
        timeout=30,
    )
    process.start()
    return SSHServer(
        process=process,
        kind="asyncssh",
        user=USER,
        password=PASSWORD,
        client_key=str(workdir / "client_key"),
        host_public_key=host_public,
        root="/",
        workdir=workdir,
    )


def main() -> None:
    import asyncssh

    port, root, host_key, authorized_keys, user, password = sys.argv[1:7]

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, given: str) -> bool:
            return (username, given) == (user, password)

    class ChrootedSFTP(asyncssh.SFTPServer):
        def __init__(self, channel: asyncssh.SSHServerChannel) -> None:  # type: ignore[type-arg]
            super().__init__(channel, chroot=root.encode())

    async def serve() -> None:
        await asyncssh.listen(
            "127.0.0.1",
            int(port),
            server_factory=Server,
            server_host_keys=[host_key],
            authorized_client_keys=authorized_keys,
            sftp_factory=ChrootedSFTP,
        )
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
