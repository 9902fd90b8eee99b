"""Google Cloud Storage on fake-gcs-server, anonymous, through ``STORAGE_EMULATOR_HOST``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
