"""Range sizes of GCS and Azure downloads from MLflow's variables, and where each carries its record."""

from __future__ import annotations

import pytest

from artifact_fs import integrity, uris
from artifact_fs.backends import azure, gcs, object_store
from artifact_fs.policy import DOWNLOAD_PART_SIZE

GS = uris.parse("gs://bucket/exp/1/artifacts")
WASBS = uris.parse("wasbs://box@acct1.blob.core.windows.net/exp/1/artifacts")
MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("environ", "overrides", "part_size"),
    [
        ({}, {}, DOWNLOAD_PART_SIZE),
        ({"MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(4 * MIB)}, {}, 4 * MIB),
        ({"MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": str(2 * MIB)}, {}, 2 * MIB),
        ({}, {"download_chunk_size": MIB}, MIB),
        ({}, {"download_part_size": 3 * MIB}, 3 * MIB),
        ({"MLFLOW_ENABLE_MULTIPART_DOWNLOAD": "false"}, {}, 0),
    ],
)
def test_gcs_download_ranges_follow_mlflow_variables(
    environ: dict[str, str], overrides: dict[str, int], part_size: int
) -> None:
    assert gcs.options(GS, environ, **overrides)["download_part_size"] == part_size


def test_gcs_filesystem_range_size_defaults_to_its_download_chunk() -> None:
    assert gcs.ArtifactGCSFileSystem(token="anon", download_chunk_size=MIB).download_part_size == MIB
    assert gcs.ArtifactGCSFileSystem(token="anon").download_part_size == DOWNLOAD_PART_SIZE
    with pytest.raises(ValueError, match="max_concurrency"):
        gcs.ArtifactGCSFileSystem(token="anon", max_concurrency=0)


def test_azure_download_ranges_follow_the_policy_part_size() -> None:
    result = azure.options(WASBS, {})
    assert result["max_single_get_size"] == result["max_chunk_get_size"] == DOWNLOAD_PART_SIZE
    result = azure.options(WASBS, {"MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(4 * MIB)})
    assert result["max_single_get_size"] == result["max_chunk_get_size"] == 4 * MIB


def test_each_store_names_the_metadata_its_record_rides_under() -> None:
    assert integrity.carried(gcs) and integrity.carried(azure)
    assert gcs.DIGESTS.metadata_key == object_store.CARRIED_DIGESTS.metadata_key == "artifact-fs-digest"
    assert azure.DIGESTS.metadata_key == "artifact_fs_digest"  # Azure metadata names are C# identifiers
    assert azure.DIGESTS.metadata_key.isidentifier()
