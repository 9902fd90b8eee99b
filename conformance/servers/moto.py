"""moto's standalone server (``moto[server]``): AWS's S3 semantics, as the cross-check to SeaweedFS.

moto accepts any key and secret (authentication is not enforced), keeps everything in memory, and
behaves like AWS where SeaweedFS differs (empty prefixes vanish with their last object). Don't give
clients ``region_name`` (s3fs would send ``LocationConstraint=us-east-1``, which moto refuses like
AWS); ``AWS_DEFAULT_REGION`` is set instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.servers.launcher import ServerProcess, http_ok, installed_binary

REGION = "us-east-1"
ACCESS_KEY = "moto-access-key"
SECRET_KEY = "moto-secret-key"


@dataclass
class MotoServer:
    """A running moto server; any credentials work, these are the ones the tests use."""

    process: ServerProcess
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}"

    def environ(self) -> dict[str, str]:
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2}),
        }
        options.update(kwargs)
        return boto3.client("s3", **options)

    def create_bucket(self, name: str) -> None:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def stop(self) -> None:
        self.process.stop()


def start_moto(log_dir: Path) -> MotoServer:
    """Start ``moto_server`` on a free port (ready in under a second)."""
    binary = installed_binary("moto_server", "moto[server]")
    process = ServerProcess(
        name="moto",
        command=lambda ports: [binary, "-H", "127.0.0.1", "-p", str(ports["port"])],
        ready=lambda ports: http_ok(f"http://127.0.0.1:{ports['port']}/moto-api/"),
        log_dir=log_dir,
        env={"AWS_DEFAULT_REGION": REGION},
        timeout=60,
        stop_grace=5.0,
    )
    process.start()
    return MotoServer(process=process)
