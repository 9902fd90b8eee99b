"""MLflow's environment variables: names, defaults, parsing, validation and precedence."""

from __future__ import annotations

import pytest

from artifact_fs import settings
from artifact_fs.settings import GIB, KIB, MIB


@pytest.mark.parametrize(
    ("setting", "default"),
    [
        (settings.MLFLOW_S3_ENDPOINT_URL, None),
        (settings.MLFLOW_S3_IGNORE_TLS, False),
        (settings.MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE, "auto"),
        (settings.MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION, "s3v4"),
        (settings.MLFLOW_GCS_UPLOAD_CHUNK_SIZE, None),
        (settings.MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT, None),
        (settings.MLFLOW_ENABLE_MULTIPART_UPLOAD, True),
        (settings.MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE, 500 * MIB),
        (settings.MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE, 500 * MIB),
        (settings.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE, 10 * MIB),
        (settings.MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE, 100 * MIB),
        (settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD, False),
        (settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD, False),
        (settings.MLFLOW_ARTIFACTS_PRESIGNED_ONLY, False),
        (settings.MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS, 300),
        (settings.MLFLOW_HTTP_REQUEST_TIMEOUT, 120),
        (settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES, 7),
        (settings.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, 2),
        (settings.MLFLOW_HTTP_REQUEST_BACKOFF_JITTER, 1.0),
        (settings.MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER, True),
        (settings.MLFLOW_ARTIFACTS_DESTINATION, "./mlartifacts"),
        (settings.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR, True),
        (settings.MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH, 2048),
    ],
)
def test_unset_variables_give_mlflows_defaults(setting: settings.Setting[object], default: object) -> None:
    assert setting.get({}) == default
    assert not setting.is_set({})


@pytest.mark.parametrize("text", ["true", "TRUE", "True", "1"])
def test_booleans_accept_true_forms(text: str) -> None:
    assert settings.MLFLOW_S3_IGNORE_TLS.get({"MLFLOW_S3_IGNORE_TLS": text}) is True


@pytest.mark.parametrize("text", ["false", "FALSE", "False", "0"])
def test_booleans_accept_false_forms(text: str) -> None:
    assert settings.MLFLOW_S3_IGNORE_TLS.get({"MLFLOW_S3_IGNORE_TLS": text}) is False


@pytest.mark.parametrize("text", ["", "yes", "no", "on", "off", "2", "t", " true", "true ", "None"])
def test_booleans_reject_anything_else_naming_variable_and_value(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD") as info:
        settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD.get({"MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": text})
    assert repr(text) in str(info.value)


def test_presence_not_truthiness_decides_is_set() -> None:
    environ = {"MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false"}
    assert settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD.is_set(environ)
    assert settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD.get(environ) is False


@pytest.mark.parametrize("text", ["abc", "1.5", "", "10MB", "0x10"])
def test_integers_must_parse(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_HTTP_REQUEST_TIMEOUT"):
        settings.MLFLOW_HTTP_REQUEST_TIMEOUT.get({"MLFLOW_HTTP_REQUEST_TIMEOUT": text})


@pytest.mark.parametrize("name", ["MLFLOW_GCS_UPLOAD_CHUNK_SIZE", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE"])
@pytest.mark.parametrize("value", [1000, 256 * KIB + 1, 100 * KIB, 0, -256 * KIB])
def test_gcs_chunk_sizes_must_be_multiples_of_256_kib(name: str, value: int) -> None:
    setting = getattr(settings, name)
    with pytest.raises(ValueError, match=f"{name}.*multiple of 262144"):
        setting.get({name: str(value)})


@pytest.mark.parametrize("value", [256 * KIB, 1 * MIB, 100 * MIB])
def test_gcs_chunk_sizes_that_are_multiples_pass(value: int) -> None:
    assert settings.MLFLOW_GCS_UPLOAD_CHUNK_SIZE.get({"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": str(value)}) == value


@pytest.mark.parametrize("value", [5 * MIB - 1, 1024, 5 * GIB + 1, 0])
def test_multipart_chunk_size_must_be_within_s3_limits(value: int) -> None:
    with pytest.raises(ValueError, match="MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.*between"):
        settings.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.get({"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(value)})


@pytest.mark.parametrize("value", [5 * MIB, 10 * MIB, 5 * GIB])
def test_multipart_chunk_size_limits_are_inclusive(value: int) -> None:
    environ = {"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(value)}
    assert settings.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.get(environ) == value


@pytest.mark.parametrize("text", ['["a"]', '"text"', "42", "null", "true", "{not json", "", "{'a': 1}"])
def test_extra_args_must_be_a_json_object(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_S3_UPLOAD_EXTRA_ARGS.*JSON object"):
        settings.MLFLOW_S3_UPLOAD_EXTRA_ARGS.get({"MLFLOW_S3_UPLOAD_EXTRA_ARGS": text})


def test_extra_args_object_is_returned() -> None:
    environ = {"MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"CacheControl": "no-cache", "Metadata": {"a": "b"}}'}
    assert settings.MLFLOW_S3_UPLOAD_EXTRA_ARGS.get(environ) == {
        "CacheControl": "no-cache",
        "Metadata": {"a": "b"},
    }


def test_pyarrow_extra_conf_pairs() -> None:
    environ = {"MLFLOW_PYARROW_EXTRA_CONF": "dfs.replication=1,fs.x=a=b"}
    assert settings.MLFLOW_PYARROW_EXTRA_CONF.get(environ) == {"dfs.replication": "1", "fs.x": "a=b"}


@pytest.mark.parametrize(("text", "bad_pair"), [("a=1,novalue", "'novalue'"), ("a=1,", "''"), ("=v", "'=v'")])
def test_pyarrow_extra_conf_malformed_pair_is_an_error(text: str, bad_pair: str) -> None:
    with pytest.raises(ValueError, match=f"MLFLOW_PYARROW_EXTRA_CONF.*{bad_pair}"):
        settings.MLFLOW_PYARROW_EXTRA_CONF.get({"MLFLOW_PYARROW_EXTRA_CONF": text})


@pytest.mark.parametrize("text", ["-2", "0", "soon"])
def test_transfer_timeout_rejects_non_positive_except_minus_one(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"):
        settings.transfer_timeout(60, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": text})


def test_transfer_timeout_minus_one_means_none_and_unset_means_default() -> None:
    assert settings.transfer_timeout(60, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1"}) is None
    assert settings.transfer_timeout(60, {}) == 60
    assert settings.transfer_timeout(600, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "5"}) == 5


@pytest.mark.parametrize("text", ["sideways", "Virtual", ""])
def test_addressing_style_must_be_known(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"):
        settings.MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE.get({"MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE": text})


@pytest.mark.parametrize(("text", "expected"), [("3", 3), ("10", 10)])
def test_http_retries_within_mlflows_cap(text: str, expected: int) -> None:
    assert settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": text}) == expected


@pytest.mark.parametrize("text", ["11", "-1"])
def test_http_retries_over_the_cap_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": text})


def test_presigned_ttl_range() -> None:
    with pytest.raises(ValueError, match="MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"):
        settings.MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS.get(
            {"MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS": "604801"}
        )


def test_explicit_argument_wins_over_environment_over_default() -> None:
    setting = settings.MLFLOW_HTTP_REQUEST_TIMEOUT
    assert settings.pick(5, setting, {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}) == 5
    assert settings.pick(None, setting, {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}) == 30
    assert settings.pick(None, setting, {}) == 120


def test_explicit_false_still_wins() -> None:
    assert settings.pick(False, settings.MLFLOW_S3_IGNORE_TLS, {"MLFLOW_S3_IGNORE_TLS": "true"}) is False


def test_tracking_tls_options_are_mutually_exclusive() -> None:
    environ = {"MLFLOW_TRACKING_INSECURE_TLS": "true", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}
    with pytest.raises(ValueError, match="cannot both be set"):
        settings.http_tls_verify(environ)
    assert settings.http_tls_verify({"MLFLOW_TRACKING_INSECURE_TLS": "true"}) is False
    assert settings.http_tls_verify({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}) == "/ca.pem"
    assert settings.http_tls_verify({}) is True


def test_s3_tls_ignore_and_ca_bundle_are_never_both() -> None:
    with pytest.raises(ValueError, match="AWS_CA_BUNDLE"):
        settings.s3_tls_verify({"MLFLOW_S3_IGNORE_TLS": "true", "AWS_CA_BUNDLE": "/ca.pem"})
    assert settings.s3_tls_verify({"MLFLOW_S3_IGNORE_TLS": "1"}) is False
    assert settings.s3_tls_verify({"MLFLOW_S3_IGNORE_TLS": "false"}) is None
    assert settings.s3_tls_verify({"AWS_CA_BUNDLE": "/ca.pem"}) == "/ca.pem"


def test_validate_environment_reports_the_first_bad_variable() -> None:
    with pytest.raises(ValueError, match="MLFLOW_S3_IGNORE_TLS"):
        settings.validate_environment({"MLFLOW_S3_IGNORE_TLS": "yes"})
    settings.validate_environment({"MLFLOW_S3_IGNORE_TLS": "true", "UNRELATED": "x"})


def test_every_setting_is_named_after_its_variable() -> None:
    for setting in settings.ALL:
        assert getattr(settings, setting.name) is setting
