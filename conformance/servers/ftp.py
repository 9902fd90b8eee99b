"""pyftpdlib for the FTP suite: plain FTP, or explicit FTPS with TLS required on both channels.

Run as a module (``python -m conformance.servers.ftp``) so one server has a named user with full
rights and an anonymous user with a home of its own, which pyftpdlib's own command line cannot do.
Every server gets its own passive-port range (below 32768) so parallel servers never share one.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance.servers.launcher import ServerProcess, free_port_range, tcp_banner

USER, PASSWORD = "ftptest", "ftp pass:@/%"
"""The password has characters that must be percent-encoded in a URI, to test the decoding."""
PASSIVE_PORTS = 40


@dataclass
class FTPServer:
    process: ServerProcess
    home: Path
    anonymous_home: Path
    tls: bool
    ca_file: str | None

    @property
    def port(self) -> int:
        return self.process.port

    def stop(self) -> None:
        self.process.stop()


def write_certificates(directory: Path) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost: (ca, cert, key) paths."""
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    authority.cert_pem.write_to_path(str(ca_path))
    certificate.cert_chain_pems[0].write_to_path(str(cert_path))
    certificate.private_key_pem.write_to_path(str(key_path))
    return str(ca_path), str(cert_path), str(key_path)


def start_ftp(log_dir: Path, data_dir: Path, *, tls: bool) -> FTPServer:
    """Start pyftpdlib on a free port with a private passive range; TLS-required when ``tls``."""
    home, anonymous_home = data_dir / "home", data_dir / "anonymous"
    home.mkdir(parents=True, exist_ok=True)
    anonymous_home.mkdir(parents=True, exist_ok=True)
    ca_file = cert = key = None
    if tls:
        ca_file, cert, key = write_certificates(data_dir)
    low, high = free_port_range(PASSIVE_PORTS)

    def command(ports: dict[str, int]) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "conformance.servers.ftp",
            "--port",
            str(ports["port"]),
            "--passive",
            f"{low}-{high}",
            "--home",
            str(home),
            "--anonymous-home",
            str(anonymous_home),
        ]
        if tls:
            argv += ["--certfile", str(cert), "--keyfile", str(key)]
        return argv

    process = ServerProcess(
        name="pyftpdlib-tls" if tls else "pyftpdlib",
        command=command,
        ready=lambda ports: tcp_banner(ports["port"], b"220 "),
        log_dir=log_dir,
        cwd=Path(__file__).resolve().parents[2],
        timeout=30,
    )
    process.start()
    return FTPServer(process, home, anonymous_home, tls, ca_file)


def main() -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer as Server

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--passive", required=True, help="low-high passive port range")
    parser.add_argument("--home", required=True)
    parser.add_argument("--anonymous-home", required=True)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    arguments = parser.parse_args()

    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, arguments.home, perm="elradfmwMT")
    authorizer.add_anonymous(arguments.anonymous_home, perm="elradfmwMT")
    handler: type[FTPHandler] = FTPHandler
    if arguments.certfile:
        handler = TLS_FTPHandler
        handler.certfile = arguments.certfile
        handler.keyfile = arguments.keyfile
        handler.tls_control_required = True
        handler.tls_data_required = True
    handler.authorizer = authorizer
    low, high = (int(part) for part in arguments.passive.split("-"))
    handler.passive_ports = range(low, high + 1)
    handler.banner = "pyftpdlib ready."
    server = Server(("127.0.0.1", arguments.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
