"""Differential: MLflow's ``S3ArtifactRepository`` and artifact_fs on the same S3 server.

MLflow (its own virtual environment, a subprocess) gets the server through ``MLFLOW_S3_ENDPOINT_URL``
and the AWS variables; artifact_fs through the same values as options. What one side writes, the
other lists and reads identically (the comparison is the one the Azure differential test uses).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.test_azure_mlflow import check_both_ways

pytestmark = [pytest.mark.s3, pytest.mark.mlflow]


def test_mlflow_and_artifact_fs_agree_on_seaweedfs(
    backend_s3_seaweedfs: BackendUnderTest, tmp_path: Path
) -> None:
    check_both_ways(backend_s3_seaweedfs, dict(backend_s3_seaweedfs.environ), tmp_path)


def test_mlflow_and_artifact_fs_agree_on_moto(backend_s3_moto: BackendUnderTest, tmp_path: Path) -> None:
    check_both_ways(backend_s3_moto, dict(backend_s3_moto.environ), tmp_path)
