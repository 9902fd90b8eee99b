"""Proxied artifacts through ``artifact-fs serve`` (a real subprocess), driven by the proxied client.

Two deployments, run through the whole generic suite with the ``mlflow-artifacts`` client:

* ``artifact-server-local``: a local destination (no presigning, so the client's multipart uploads
  get a 501 and fall back to a streamed PUT, as MLflow's clients do);
* ``artifact-server-s3``: an S3 destination (moto, which lists like AWS: SeaweedFS keeps emptied
  prefixes listed for a minute) with ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` and ``..._DOWNLOAD``
  on, so large writes go through ``mpu/create`` + presigned parts + ``mpu/complete`` and reads may
  use presigned URLs. ``test_server_mlflow.py`` runs MLflow's own client on a SeaweedFS destination.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from artifact_fs.backends import mlflow_artifacts
from conformance.backends.mlflow_artifacts import CLIENT_ENVIRON, CLIENT_OPTIONS
from conformance.backends.s3 import BUCKET as S3_BUCKET
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.moto import MotoServer
from conformance.servers.seaweedfs import SeaweedFS

S3_PREFIX = "artifact-server"

ARTIFACT_SERVER_LOCAL = BackendSpec(
    id="artifact-server-local",
    mark="mlflow_artifacts",
    capabilities=mlflow_artifacts.CAPABILITIES.narrowed({"multipart_upload": False}),
)
ARTIFACT_SERVER_S3 = BackendSpec(
    id="artifact-server-s3", mark="mlflow_artifacts", capabilities=mlflow_artifacts.CAPABILITIES
)
SPECS: list[BackendSpec] = [ARTIFACT_SERVER_LOCAL, ARTIFACT_SERVER_S3]


def s3_destination_environ(s3_server: SeaweedFS | MotoServer) -> dict[str, str]:
    """The server's environment for an S3 destination with presigned uploads and downloads advertised."""
    environ: Mapping[str, str] = s3_server.environ()
    return {
        **environ,
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "true",
    }


@pytest.fixture(scope="session")
def artifact_server_local(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("artifact-server-destination")
    server = start_artifact_server(server_log_dir, str(destination), name="artifact-server-local")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def artifact_server_s3(server_log_dir: Path, moto_server: MotoServer) -> Iterator[ArtifactServer]:
    server = start_artifact_server(
        server_log_dir,
        f"s3://{S3_BUCKET}/{S3_PREFIX}",
        env=s3_destination_environ(moto_server),
        name="artifact-server-s3",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def artifact_server_seaweedfs(server_log_dir: Path, seaweedfs_server: SeaweedFS) -> Iterator[ArtifactServer]:
    """On SeaweedFS, for MLflow's own client, with presigned multipart uploads and downloads."""
    server = start_artifact_server(
        server_log_dir,
        f"s3://{S3_BUCKET}/{S3_PREFIX}",
        env=s3_destination_environ(seaweedfs_server),
        name="artifact-server-seaweedfs",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend_artifact_server_local(artifact_server_local: ArtifactServer) -> BackendUnderTest:
    return BackendUnderTest(
        spec=ARTIFACT_SERVER_LOCAL,
        root_url=f"{artifact_server_local.artifacts_url}/suite",
        storage_options=dict(CLIENT_OPTIONS),
        environ={"MLFLOW_TRACKING_URI": artifact_server_local.url, **CLIENT_ENVIRON},
        details={"server": artifact_server_local, "prefix": "suite"},
    )


@pytest.fixture(scope="session")
def backend_artifact_server_s3(
    artifact_server_s3: ArtifactServer, moto_server: MotoServer
) -> BackendUnderTest:
    return BackendUnderTest(
        spec=ARTIFACT_SERVER_S3,
        root_url=f"{artifact_server_s3.artifacts_url}/suite",
        storage_options=dict(CLIENT_OPTIONS),
        environ={"MLFLOW_TRACKING_URI": artifact_server_s3.url, **CLIENT_ENVIRON},
        details={
            "server": artifact_server_s3,
            "s3": moto_server,
            "bucket": S3_BUCKET,
            "prefix": f"{S3_PREFIX}/suite",
        },
    )
