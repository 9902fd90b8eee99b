"""Google Cloud Storage on fake-gcs-server, anonymous, through ``STORAGE_EMULATOR_HOST``; plus a
service-account key that can sign V4 URLs, for the presign hooks."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# gcsfs reads this when it is imported; the conftest sets it too, but this module may load first.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import pytest

from artifact_fs.backends import gcs
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers import fake_gcs
from conformance.servers.launcher import ServerProcess

BUCKET = "artifacts"
GCS = BackendSpec(id="gcs", mark="gcs", capabilities=gcs.CAPABILITIES)
SPECS = [GCS]


@pytest.fixture(scope="session")
def fake_gcs_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    import requests

    server = fake_gcs.start_fake_gcs(server_log_dir, tmp_path_factory.mktemp("fake-gcs-data"))
    try:
        response = requests.post(
            f"{fake_gcs.endpoint(server)}/storage/v1/b",
            params={"project": "test"},
            json={"name": BUCKET},
            timeout=10,
        )
        response.raise_for_status()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend_gcs(fake_gcs_server: ServerProcess) -> BackendUnderTest:
    endpoint = fake_gcs.endpoint(fake_gcs_server)
    return BackendUnderTest(
        spec=GCS,
        root_url=f"gs://{BUCKET}/suite",
        storage_options={"endpoint_url": endpoint, "token": "anon", "project": "test"},
        environ={"STORAGE_EMULATOR_HOST": endpoint},
        details={"server": fake_gcs_server, "endpoint": endpoint, "bucket": BUCKET},
    )


class _TokenEndpoint(BaseHTTPRequestHandler):
    """A stand-in OAuth token endpoint: every JWT grant gets a bearer token (fake-gcs-server ignores it)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def gcs_service_account_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A service-account key file with a fresh RSA key: it signs V4 URLs like a real one (fake-gcs-server
    does not check signatures), and its token endpoint is a local stand-in."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "artifacts@test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{server.server_port}/token",
    }
    path = tmp_path_factory.mktemp("gcs-key") / "service-account.json"
    path.write_text(json.dumps(info))
    try:
        yield path
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
