"""Azure options from MLflow's variables: credential order, endpoints, timeouts, URI forms."""

from __future__ import annotations

import socket
import sys

import pytest

from artifact_fs import uris
from artifact_fs.backends import azure

WASBS = uris.parse("wasbs://box@acct1.blob.core.windows.net/exp/1/artifacts")
ABFSS = uris.parse("abfss://lake@acct2.dfs.core.windows.net/exp/a%20b")
CS = "AccountName=acct1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/acct1;"
ALL = {
    "AZURE_STORAGE_CONNECTION_STRING": CS,
    "AZURE_STORAGE_ACCESS_KEY": "a2V5",
    "AZURE_STORAGE_SAS_TOKEN": "sv=1&sig=x",
}


def _credential(options: azure.AzureOptions) -> set[str]:
    return {name for name in ("connection_string", "account_key", "sas_token") if name in options}


def test_wasbs_prefers_the_connection_string_then_the_access_key() -> None:
    assert _credential(azure.options(WASBS, ALL)) == {"connection_string"}
    without_cs = {k: v for k, v in ALL.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
    assert _credential(azure.options(WASBS, without_cs)) == {"account_key"}
    assert _credential(azure.options(WASBS, {"AZURE_STORAGE_SAS_TOKEN": "sv=1"})) == set()


def test_abfss_prefers_the_sas_token() -> None:
    assert _credential(azure.options(ABFSS, ALL)) == {"sas_token"}
    assert _credential(azure.options(ABFSS, {"AZURE_STORAGE_ACCESS_KEY": "a2V5"})) == {"account_key"}


def test_explicit_credentials_replace_the_environment() -> None:
    result = azure.options(WASBS, ALL, account_key="ZXhwbGljaXQ=")
    assert _credential(result) == {"account_key"} and result["account_key"] == "ZXhwbGljaXQ="


def test_account_and_blob_endpoint_come_from_the_uri() -> None:
    assert azure.options(WASBS, {})["account_url"] == "https://acct1.blob.core.windows.net"
    assert azure.options(ABFSS, {})["account_url"] == "https://acct2.blob.core.windows.net"
    china = uris.parse("wasbs://c@acct3.blob.core.chinacloudapi.cn/p")
    assert azure.options(china, {})["account_url"] == "https://acct3.blob.core.chinacloudapi.cn"
    assert azure.options(WASBS, {})["account_name"] == "acct1"
    assert azure.options(WASBS, {}, account_url="http://127.0.0.1:1/acct1")["account_url"].startswith(
        "http://127"
    )


def test_paths_are_container_then_key_and_abfss_paths_are_decoded() -> None:
    assert azure.fs_path(WASBS, {}) == "box/exp/1/artifacts"
    assert azure.fs_path(ABFSS, {}) == "lake/exp/a b"
    assert azure.fs_path(uris.parse("wasbs://box@acct1.blob.core.windows.net"), {}) == "box"


@pytest.mark.parametrize(("value", "expected"), [(None, 600), ("30", 30), ("-1", None)])
def test_transfer_timeout_defaults_to_mlflows_600_seconds(value: str | None, expected: int | None) -> None:
    environ = {} if value is None else {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": value}
    assert azure.options(WASBS, environ)["timeout"] == expected


def test_bad_timeout_names_the_variable() -> None:
    with pytest.raises(ValueError, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"):
        azure.options(WASBS, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "soon"})


def test_tls_settings_follow_mlflows_tracking_variables() -> None:
    assert azure.options(WASBS, {})["connection_verify"] is True
    assert azure.options(WASBS, {"MLFLOW_TRACKING_INSECURE_TLS": "true"})["connection_verify"] is False
    assert (
        azure.options(WASBS, {"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"})["connection_verify"]
        == "/ca.pem"
    )


def test_retries_are_bounded_so_a_dead_endpoint_fails_in_seconds() -> None:
    retry = azure.options(WASBS, {})
    worst = sum(
        retry["initial_backoff"]
        + (retry["increment_base"] ** count if count else 0)
        + retry["random_jitter_range"]
        for count in range(retry["retry_total"])
    )
    assert worst < 15


@pytest.mark.parametrize(
    "uri",
    [
        "wasb://box@acct1.blob.core.windows.net/p",
        "wasbs://acct1.blob.core.windows.net/p",
        "wasbs://box@acct1.blob.example.org/p",
        "wasbs://box@acct-1.blob.core.windows.net/p",
        "abfs://lake@acct2.dfs.core.windows.net/p",
    ],
)
def test_malformed_azure_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="Invalid artifact URI"):
        uris.parse(uri)


def test_default_credential_without_azure_identity_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity.aio", None)
    with pytest.raises(ImportError, match=r"pip install 'artifact-fs\[azure\]'"):
        azure.filesystem(azure.options(WASBS, {}))


def test_sdk_client_options_reach_the_service_client() -> None:
    fs = azure.filesystem(
        azure.options(
            WASBS, {}, connection_string=CS, max_block_size=1024, max_single_put_size=2048, retry_total=1
        )
    )
    config = fs.service_client._config
    assert (config.max_block_size, config.max_single_put_size) == (1024, 2048)
    assert config.retry_policy.total_retries == 1
    assert fs.service_client.url.startswith("http://127.0.0.1:9/acct1")


@pytest.mark.parametrize(
    ("environ", "verify"),
    [
        ({}, True),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "true"}, False),
        ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}, "/ca.pem"),
    ],
)
def test_the_stall_bounded_transport_keeps_the_tls_and_timeout_settings(
    environ: dict[str, str], verify: bool | str
) -> None:
    """The client's transport is ours (its sockets bound a stalled upload); MLflow's TLS variables and
    the timeouts must still reach it, as they reach the transport the SDK would build itself."""
    options = azure.options(
        WASBS, {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "7", **environ}, connection_string=CS
    )
    transport = azure.filesystem(options).service_client._config.transport
    if not hasattr(socket, "TCP_USER_TIMEOUT"):
        return
    assert isinstance(transport, azure.StallBoundedTransport)
    config = transport.connection_config
    assert (config.verify, config.read_timeout) == (verify, 7)
