"""Server-side rules that need no server: the SSRF host policy and the multipart file-name rule."""

from __future__ import annotations

import pytest

from artifact_fs.content_headers import content_disposition, guess_mime_type
from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.server import host_policy, safety

DESTINATION = "sftp://user@files.example.com/artifacts"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/x",  # not host-addressed
        "./mlartifacts",
        "mlflow-artifacts:/0/run/artifacts",  # selects no host
        "sftp://other@files.example.com:22/elsewhere",  # same (family, host, port) as the destination
        "sftp://FILES.example.com/x",
    ],
)
def test_host_policy_accepts(uri: str) -> None:
    host_policy.enforce(uri, "artifact_location", [DESTINATION], environ={})


@pytest.mark.parametrize(
    "uri",
    [
        "sftp://evil.example.com/x",
        "sftp://files.example.com:2222/x",  # another port
        "http://169.254.169.254/latest/meta-data",
        "mlflow-artifacts://internal:8080/x",
        "hdfs://namenode:8020/x",
    ],
)
def test_host_policy_refuses_other_hosts(uri: str) -> None:
    with pytest.raises(ValueError, match="MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES"):
        host_policy.enforce(uri, "artifact_location", [DESTINATION], environ={})


def test_host_policy_allow_list_and_families() -> None:
    host_policy.enforce(
        "http://a.example/x", "f", [], environ={"MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES": "http"}
    )
    # https and mlflow-artifacts are the http family; mlflow-artifacts matches 80 and 443
    host_policy.enforce("mlflow-artifacts://h.example/x", "f", ["https://h.example/api"], environ={})
    host_policy.enforce("viewfs://nn/x", "f", ["hdfs://nn/root"], environ={})


@pytest.mark.parametrize("uri", ["sftp://a b@host/x", "sftp://host\\evil/x", "ftp://host:99999/x"])
def test_malformed_authorities_are_never_trusted(uri: str) -> None:
    with pytest.raises(ValueError, match="cannot use"):
        host_policy.enforce(uri, "f", [uri], environ={})


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("model.bin", "model.bin"),
        ("/home/me/model.bin", "model.bin"),
        ("C:\\Users\\me\\model.bin", "model.bin"),
    ],
)
def test_multipart_file_name_takes_the_last_component_of_legacy_full_paths(raw: str, name: str) -> None:
    assert safety.multipart_file_name(raw) == name


@pytest.mark.parametrize("raw", ["", ".", "..", "a/..", "x%23y", "a;b", None, 3])
def test_multipart_file_name_refuses_non_names(raw: object) -> None:
    with pytest.raises(InvalidArtifactPathError):
        safety.multipart_file_name(raw)


@pytest.mark.parametrize(
    ("raw", "path"), [("", ""), ("a//b/./c", "a/b/c"), ("a%2Fb", "a/b"), ("dir/", "dir")]
)
def test_artifact_paths_are_normalised(raw: str, path: str) -> None:
    assert safety.artifact_path(raw) == path


def test_download_header_helpers_match_mlflow() -> None:
    assert guess_mime_type("dir/MLmodel") == "text/plain"
    assert guess_mime_type("x.parquet") in {"application/octet-stream", "application/vnd.apache.parquet"}
    assert content_disposition("a b.txt") == 'attachment; filename="a b.txt"'
    assert content_disposition('q"uote.txt') == 'attachment; filename="q\\"uote.txt"'
    assert content_disposition("dir/tab\there") == "attachment; filename=tabhere; filename*=UTF-8''tab%09here"


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("MLmodel", "text/plain"),
        ("mlproject", "text/plain"),
        ("notebook.ipynb", "text/plain"),
        ("conda.yaml", "text/plain"),
        ("data.csv", "text/plain"),  # MLflow's text list wins over mimetypes' text/csv
        ("MLMODEL", "application/octet-stream"),  # MLflow matches names case-sensitively
        ("image.png", "image/png"),
        ("model.pkl", "application/octet-stream"),
    ],
)
def test_one_mime_table_follows_mlflows_guess_mime_type(name: str, mime: str) -> None:
    assert guess_mime_type(f"a/{name}") == mime
