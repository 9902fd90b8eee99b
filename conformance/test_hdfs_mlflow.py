"""Differential: MLflow's ``HdfsArtifactRepository`` and artifact_fs on the same MiniDFSCluster.

MLflow (in its own virtual environment, with its own pyarrow) reaches HDFS through libhdfs, built by
``scripts/install/45-libhdfs.sh``; the ``backend_hdfs_pyarrow`` fixture exports ``ARROW_LIBHDFS_DIR``
and ``CLASSPATH`` for it. artifact_fs is checked with both engines: what one side writes, the other
lists and reads identically (paths, directory flags, sizes, bytes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.test_ftp_mlflow import check_both_ways

pytestmark = [pytest.mark.hdfs, pytest.mark.mlflow]


def test_mlflow_and_artifact_fs_agree_on_hdfs(
    backend_hdfs_pyarrow: BackendUnderTest, backend_hdfs_either: BackendUnderTest, tmp_path: Path
) -> None:
    """MLflow reaches HDFS through libhdfs (the pyarrow backend's environment); artifact_fs, each engine."""
    check_both_ways(backend_hdfs_either, backend_hdfs_pyarrow.root_url, {}, tmp_path)
