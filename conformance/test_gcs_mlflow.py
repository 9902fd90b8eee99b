"""Differential: MLflow's ``GCSArtifactRepository`` and artifact_fs on the same fake-gcs-server.

MLflow's google-cloud-storage client finds the emulator through ``STORAGE_EMULATOR_HOST`` and uses
anonymous credentials there; artifact_fs is configured the same way. The comparison itself is the
one the Azure differential test uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.test_azure_mlflow import check_both_ways

pytestmark = [pytest.mark.gcs, pytest.mark.mlflow]


def test_mlflow_and_artifact_fs_agree_on_gs(backend_gcs: BackendUnderTest, tmp_path: Path) -> None:
    environ = {**backend_gcs.environ, "GOOGLE_CLOUD_PROJECT": "test", "NO_GCE_CHECK": "true"}
    check_both_ways(backend_gcs, environ, tmp_path)
