"""GCS options from MLflow's variables: chunk sizes, timeouts (and the deprecated one), endpoint."""

from __future__ import annotations

import warnings

import pytest

from artifact_fs import uris
from artifact_fs.backends import gcs

GS = uris.parse("gs://bucket/exp/1/artifacts")
KIB = 1024


def test_defaults_match_google_cloud_storage() -> None:
    result = gcs.options(GS, {})
    assert result["transfer_timeout"] == 60
    assert result["upload_chunk_size"] is None and result["download_chunk_size"] is None
    assert "endpoint_url" not in result and "token" not in result


def test_chunk_sizes_come_from_the_environment() -> None:
    environ = {
        "MLFLOW_GCS_UPLOAD_CHUNK_SIZE": str(512 * KIB),
        "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": str(256 * KIB),
    }
    result = gcs.options(GS, environ)
    assert (result["upload_chunk_size"], result["download_chunk_size"]) == (512 * KIB, 256 * KIB)


@pytest.mark.parametrize("value", ["1000", "0", "-262144", "big"])
def test_bad_chunk_sizes_name_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_GCS_UPLOAD_CHUNK_SIZE"):
        gcs.options(GS, {"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": value})


def test_bad_explicit_chunk_size_explains_the_unit() -> None:
    with pytest.raises(ValueError, match="multiple of 256 KiB"):
        gcs.options(GS, {}, download_chunk_size=300 * KIB)


@pytest.mark.parametrize(("value", "expected"), [("30", 30.0), ("-1", None)])
def test_transfer_timeout_and_minus_one_for_none(value: str, expected: float | None) -> None:
    assert gcs.options(GS, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": value})["transfer_timeout"] == expected


def test_deprecated_timeout_is_honoured_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"):
        result = gcs.options(GS, {"MLFLOW_GCS_DEFAULT_TIMEOUT": "15"})
    assert result["transfer_timeout"] == 15.0


def test_new_timeout_wins_over_the_deprecated_one_silently() -> None:
    environ = {"MLFLOW_GCS_DEFAULT_TIMEOUT": "15", "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "45"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gcs.options(GS, environ)["transfer_timeout"] == 45.0


def test_emulator_host_and_key_file_from_the_environment() -> None:
    environ = {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json"}
    result = gcs.options(GS, environ)
    assert result["endpoint_url"] == "http://127.0.0.1:4443"
    assert result["token"] == "/keys/sa.json"


def test_explicit_options_win() -> None:
    result = gcs.options(GS, {"STORAGE_EMULATOR_HOST": "http://a:1"}, endpoint_url="http://b:2", token="anon")
    assert (result["endpoint_url"], result["token"]) == ("http://b:2", "anon")


def test_path_is_bucket_then_key() -> None:
    assert gcs.fs_path(GS, {}) == "bucket/exp/1/artifacts"
    assert gcs.fs_path(uris.parse("gs://bucket"), {}) == "bucket"


def test_timeout_bounds_connect_and_reads_not_whole_transfers() -> None:
    fs = gcs.filesystem(gcs.options(GS, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "7"}, token="anon"))
    timeout = fs.requests_timeout
    assert (timeout.total, timeout.sock_connect, timeout.sock_read) == (None, 7.0, 7.0)
    unlimited = gcs.filesystem(
        gcs.options(GS, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1"}, token="anon")
    )
    timeout = unlimited.requests_timeout
    # No limit on a transfer, but an unreachable host still fails within the policy's connect timeout.
    assert (timeout.total, timeout.sock_connect, timeout.sock_read) == (None, 10.0, None)


def test_retries_must_allow_one_attempt() -> None:
    with pytest.raises(ValueError, match="retries"):
        gcs.filesystem(gcs.options(GS, {}, token="anon", retries=0))
