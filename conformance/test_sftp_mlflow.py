"""Differential: MLflow's ``SFTPArtifactRepository`` (pysftp) and artifact_fs on the same sshd.

MLflow finds the key through ``~/.ssh/config`` (``IdentityFile``) and checks the host key against
``~/.ssh/known_hosts``; its subprocess gets a ``HOME`` with both, as a real user's would have.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.test_ftp_mlflow import check_both_ways

pytestmark = [pytest.mark.sftp, pytest.mark.mlflow]


def test_mlflow_and_artifact_fs_agree_on_sftp(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from conformance.backends.sftp import SFTP

    backend: BackendUnderTest = request.getfixturevalue(SFTP.fixture_name)
    check_both_ways(backend, backend.root_url, dict(backend.environ), tmp_path)
