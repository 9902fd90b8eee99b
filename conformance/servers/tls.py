"""Throwaway TLS material for test servers: a private CA and a server certificate for 127.0.0.1.

``trustme`` makes the CA in memory; the files are written to a temp dir so servers (SeaweedFS's
``-s3.cert.file``) and clients (``AWS_CA_BUNDLE``) can point at them. Nothing here is trusted by
the system, which is exactly what the TLS tests need: verification fails unless the CA is given
or verification is turned off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCertificates:
    """Paths of the PEM files: the CA to trust, and the server's certificate chain and key."""

    __test__ = False  # not a pytest test class

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(
    directory: Path, hostnames: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> TestCertificates:
    """Write a fresh CA and a server certificate valid for ``hostnames`` into ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    server = authority.issue_cert(*hostnames)
    certificates = TestCertificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    authority.cert_pem.write_to_path(str(certificates.ca_file))
    server.private_key_pem.write_to_path(str(certificates.key_file))
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    certificates.cert_file.write_bytes(chain)
    return certificates
