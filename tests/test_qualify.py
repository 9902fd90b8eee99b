"""Root qualification as MLflow does it (reference §4) and the double-qualification checks."""

from __future__ import annotations

import os
import pathlib

import pytest

from artifact_fs.qualify import (
    append_to_uri_path,
    check_endpoint_url,
    check_root_not_qualified_twice,
    experiment_artifact_location,
    logged_model_artifact_root,
    resolve_uri_if_local,
    run_artifact_root,
)


@pytest.mark.parametrize(
    ("uri", "paths", "expected"),
    [
        ("s3://b/root", ("0",), "s3://b/root/0"),
        ("mlflow-artifacts:/", ("0",), "mlflow-artifacts:/0"),
        ("file:///tmp/x", ("1", "abc", "artifacts"), "file:///tmp/x/1/abc/artifacts"),
        ("./mlartifacts", ("1",), "./mlartifacts/1"),
        ("s3://b", ("0",), "s3://b/0"),
        ("s3://b/", ("0",), "s3://b/0"),
        ("gs://b/p", ("/abs",), "gs://b/p/abs"),
        ("hdfs:/data", ("0",), "hdfs:/data/0"),
        ("hdfs://nn:8020/data", ("0", "r", "artifacts"), "hdfs://nn:8020/data/0/r/artifacts"),
        (
            "http://h/api/2.0/mlflow-artifacts/artifacts",
            ("0",),
            "http://h/api/2.0/mlflow-artifacts/artifacts/0",
        ),
        ("http://h/a?x=1", ("b",), "http://h/a/b?x=1"),
        ("file:relative", ("0",), "file:relative/0"),
        ("/abs/root", ("0", "r"), "/abs/root/0/r"),
        ("wasbs://c@a.blob.core.windows.net/p", ("0",), "wasbs://c@a.blob.core.windows.net/p/0"),
    ],
)
def test_append_to_uri_path_matches_mlflow(uri: str, paths: tuple[str, ...], expected: str) -> None:
    assert append_to_uri_path(uri, *paths) == expected


@pytest.mark.parametrize(
    "uri", ["http://foo/bar?a=../../..", "s3://b/p?x=%2e%2e/", "http://h/p?q=%252e%252e"]
)
def test_append_refuses_dotdot_in_query(uri: str) -> None:
    with pytest.raises(ValueError, match="'..'"):
        append_to_uri_path(uri, "run")


def test_resolve_uri_if_local(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cwd = os.getcwd()
    assert resolve_uri_if_local("./mlruns") == f"{cwd}/mlruns"
    assert resolve_uri_if_local("file:./mlruns") == f"file://{cwd}/mlruns"
    assert resolve_uri_if_local("file:///abs/x") == "file:///abs/x"
    assert resolve_uri_if_local("/abs/x") == "/abs/x"
    assert resolve_uri_if_local("s3://b/k") == "s3://b/k"
    assert resolve_uri_if_local("mlflow-artifacts:/") == "mlflow-artifacts:/"


def test_run_roots_follow_mlflows_layout(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = experiment_artifact_location("./mlartifacts", 3)
    assert experiment == f"{os.getcwd()}/mlartifacts/3"
    assert run_artifact_root(experiment, "abc123") == f"{os.getcwd()}/mlartifacts/3/abc123/artifacts"
    assert run_artifact_root("mlflow-artifacts:/1", "r") == "mlflow-artifacts:/1/r/artifacts"
    assert logged_model_artifact_root("s3://b/1", "m-1") == "s3://b/1/models/m-1/artifacts"


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "https://s3.example.com/", "http://[::1]:9000"]
)
def test_good_endpoints_are_accepted(endpoint: str) -> None:
    assert check_endpoint_url("MLFLOW_S3_ENDPOINT_URL", endpoint) == endpoint.rstrip("/")


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("s3://bucket/prefix/", "artifact URI, not an endpoint"),
        ("http://127.0.0.1:9000/bucket", "has a path"),
        ("https://minio.local/mlflow/artifacts", "has a path"),
        ("127.0.0.1:9000", "not an http"),
        ("ftp://host", "not an http"),
        ("http://", "not an http"),
        ("http://host:99999", "invalid port"),
        ("http://key:secret@host", "carries credentials"),
        ("http://host/?x=1", "query"),
    ],
)
def test_bad_endpoints_are_refused_with_the_fix(endpoint: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        check_endpoint_url("MLFLOW_S3_ENDPOINT_URL", endpoint)
    assert "MLFLOW_S3_ENDPOINT_URL" in str(info.value)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("root", "endpoint"),
    [
        ("http://127.0.0.1:9000/bucket/0", "http://127.0.0.1:9000"),
        ("https://bucket.s3.us-east-1.amazonaws.com/key", None),
        ("https://s3.amazonaws.com/bucket/key", None),
        ("s3://bucket/http://127.0.0.1:9000/bucket/key", None),
        ("s3://bucket/127.0.0.1:9000/bucket/key", "http://127.0.0.1:9000"),
        ("s3://bucket/key/bucket/key/0", None),
        ("s3://bucket/a/b/bucket/a/b", None),
    ],
)
def test_roots_qualified_twice_are_refused(root: str, endpoint: str | None) -> None:
    with pytest.raises(ValueError, match="twice|S3 HTTP URL|endpoint URL"):
        check_root_not_qualified_twice(root, endpoint)


@pytest.mark.parametrize(
    "root",
    [
        "s3://bucket/key/0",
        "s3://bucket/bucket/0",
        "s3://models/models-archive/models",
        "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/0",
        "mlflow-artifacts:/0/abc/artifacts",
        "/local/path",
    ],
)
def test_ordinary_roots_pass(root: str) -> None:
    check_root_not_qualified_twice(root, "http://127.0.0.1:9000")
