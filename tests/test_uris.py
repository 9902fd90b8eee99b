"""Every artifact URI form MLflow accepts, and every rejection (reference §2.x, §3.3)."""

from __future__ import annotations

import pytest

from artifact_fs import uris
from artifact_fs.uris import parse

# (uri, backend, expected fields) - each must also round-trip exactly.
ACCEPTED = [
    ("mlruns", "local", {"scheme": "", "path": "mlruns"}),
    ("./mlruns/0", "local", {"scheme": "", "path": "./mlruns/0"}),
    ("../shared/artifacts", "local", {"scheme": "", "path": "../shared/artifacts"}),
    ("/abs/path/artifacts", "local", {"scheme": "", "path": "/abs/path/artifacts"}),
    ("/mnt/nfs/mlflow/0/abc/artifacts", "local", {"path": "/mnt/nfs/mlflow/0/abc/artifacts"}),
    ("file:///tmp/mlruns", "local", {"scheme": "file", "path": "/tmp/mlruns", "has_authority": True}),
    ("file:/tmp/mlruns", "local", {"scheme": "file", "path": "/tmp/mlruns", "has_authority": False}),
    ("file:relative/dir", "local", {"scheme": "file", "path": "relative/dir"}),
    ("file://localhost/tmp/x", "local", {"host": "localhost", "path": "/tmp/x"}),
    ("file:///tmp/with%20space", "local", {"path": "/tmp/with%20space"}),
    ("FILE:///tmp/upper", "local", {"scheme": "file"}),
    ("C:\\Users\\me\\mlruns", "local", {"scheme": "", "path": "C:\\Users\\me\\mlruns"}),
    ("c:/Users/me/mlruns", "local", {"scheme": "", "path": "c:/Users/me/mlruns"}),
    ("D:", "local", {"scheme": ""}),
    ("s3://bucket/path/to/artifacts", "s3", {"host": "bucket", "path": "/path/to/artifacts"}),
    ("s3://bucket", "s3", {"host": "bucket", "path": ""}),
    ("s3://bucket/", "s3", {"host": "bucket", "path": "/"}),
    ("s3://my.dotted.bucket/0/abc/artifacts", "s3", {"host": "my.dotted.bucket"}),
    ("gs://bucket/path", "gcs", {"host": "bucket", "path": "/path"}),
    ("gs://bucket", "gcs", {"host": "bucket"}),
    ("wasbs://container@account.blob.core.windows.net/path", "azure", {"username": "container"}),
    ("wasbs://c@acct1.blob.core.chinacloudapi.cn/p", "azure", {"host": "acct1.blob.core.chinacloudapi.cn"}),
    ("wasbs://c@acct2.blob.core.usgovcloudapi.net/p/q", "azure", {"path": "/p/q"}),
    ("wasbs://c@account.blob.core.windows.net", "azure", {"path": ""}),
    ("abfss://fs@account.dfs.core.windows.net/path", "azure", {"username": "fs"}),
    ("abfss://fs@account.dfs.core.chinacloudapi.cn/a%20b", "azure", {"path": "/a%20b"}),
    ("ftp://user:pass@host:2121/path", "ftp", {"username": "user", "password": "pass", "port": 2121}),
    ("ftp://host/path", "ftp", {"host": "host", "username": None}),
    ("ftp://user@host/path", "ftp", {"username": "user", "password": None}),
    ("ftp://us%40er:p%3Ass@host/p", "ftp", {"username": "us@er", "password": "p:ss"}),
    ("sftp://user@host:2222/path", "sftp", {"username": "user", "port": 2222}),
    ("sftp://user:pass@host/path", "sftp", {"password": "pass"}),
    ("sftp://host/path", "sftp", {"host": "host"}),
    ("hdfs://namenode:8020/path", "hdfs", {"host": "namenode", "port": 8020}),
    ("hdfs:/path/on/default", "hdfs", {"host": None, "path": "/path/on/default", "has_authority": False}),
    ("hdfs:///path", "hdfs", {"host": None, "has_authority": True}),
    ("viewfs://cluster/path", "hdfs", {"scheme": "viewfs", "host": "cluster"}),
    ("http://host:5000/api/2.0/mlflow-artifacts/artifacts/0/abc", "mlflow_artifacts", {"port": 5000}),
    ("https://host/prefix/api/2.0/mlflow-artifacts/artifacts", "mlflow_artifacts", {"scheme": "https"}),
    ("http://[::1]:5000/api/2.0/mlflow-artifacts/artifacts/x", "mlflow_artifacts", {"host": "::1"}),
    ("mlflow-artifacts:/0/abc/artifacts", "mlflow_artifacts", {"host": None, "path": "/0/abc/artifacts"}),
    ("mlflow-artifacts:/", "mlflow_artifacts", {"path": "/"}),
    ("mlflow-artifacts://other:8080/0/abc", "mlflow_artifacts", {"host": "other", "port": 8080}),
    ("mlflow-artifacts://host/0", "mlflow_artifacts", {"host": "host", "port": None}),
    ("runs:/abc123/model/MLmodel", "runs", {"path": "/abc123/model/MLmodel"}),
    ("runs:/abc123", "runs", {"path": "/abc123"}),
    ("runs:/abc123/", "runs", {"path": "/abc123/"}),
    ("s3://bucket/key?versionId=3", "s3", {"query": "versionId=3"}),
]

REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("foo://bar/baz", "unknown scheme 'foo'"),
    ("wasb://c@a.blob.core.windows.net/p", "only 'wasbs'"),
    ("abfs://c@a.dfs.core.windows.net/p", "only 'abfss'"),
    ("s3a://bucket/p", "unknown scheme 's3a'"),
    ("models://profile@databricks/name/1", "Not a proper models:/ URI"),
    ("dbfs:/databricks/mlflow", "out of scope"),
    ("wasbs://account.blob.core.windows.net/p", "WASBS URI must be"),
    ("wasbs://c@account.blob.core.evil.net/p", "WASBS URI must be"),
    ("wasbs://c@acc-ount.blob.core.windows.net/p", "WASBS URI must be"),
    ("wasbs://c@evil.net/p", "WASBS URI must be"),
    ("wasbs://c:key@a.blob.core.windows.net/p", "password"),
    ("abfss://account.dfs.core.windows.net/p", "ABFSS URI must be"),
    ("s3:///bucket/path", "bucket name is missing"),
    ("s3://", "bucket name is missing"),
    ("gs:///p", "bucket name is missing"),
    ("s3://key:secret@bucket/p", "credentials and endpoints"),
    ("s3://bucket:9000/p", "credentials and endpoints"),
    ("ftp://host:notaport/p", "port"),
    ("sftp://host:70000/p", "port"),
    ("http:///api/2.0/mlflow-artifacts/artifacts", "expected http"),
    ("mlflow-artifacts://5000/0/abc", "port number: 5000, but no host"),
    ("mlflow-artifacts://user:pw@host/0", "credentials"),
    ("runs://abc/path", "Not a proper runs:/ URI"),
    ("runs:abc/path", "Not a proper runs:/ URI"),
    ("runs:/", "Not a proper runs:/ URI"),
    ("file://remotehost/etc/passwd", "remote host"),
    ("http://host/run/artifacts#xx/yy/zz", "fragments"),
    ("http:///#/../../../../etc/", "fragments"),
    ("s3://bucket/path#frag", "fragments"),
    ("local/path#frag", "fragment"),
    ("http://host/a;../../b", "';' path parameters"),
    ("http://host/api/2.0/mlflow-artifacts/artifacts/../../x", "'..' segments"),
    ("mlflow-artifacts:/0/%2e%2e/%2e%2e/etc", "'..' segments"),
    ("http://foo/bar?a=../../..", "'..'"),
    ("s3://bucket/p?x=%2e%2e%2f", "'..'"),
    ("s3://bucket/p\x00x", "NUL"),
]


@pytest.mark.parametrize(("uri", "backend", "fields"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_forms_parse_and_round_trip(uri: str, backend: str, fields: dict[str, object]) -> None:
    parsed = parse(uri)
    assert parsed.backend == backend
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name
    expected = uri if parsed.scheme == "" else parsed.scheme + uri[len(parsed.scheme) :]
    assert parsed.to_string(reveal=True) == expected
    assert parse(parsed.to_string(reveal=True)) == parsed


@pytest.mark.parametrize(("uri", "message"), REJECTED, ids=[r[0] or "empty" for r in REJECTED])
def test_rejections_are_clear_value_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(uri)


def test_unknown_scheme_error_lists_supported_schemes() -> None:
    with pytest.raises(ValueError) as info:
        parse("nope://x")
    for scheme in ("s3", "gs", "wasbs", "abfss", "ftp", "sftp", "hdfs", "mlflow-artifacts", "runs"):
        assert scheme in str(info.value)


def test_passwords_never_appear_in_str_repr_or_errors() -> None:
    parsed = parse("ftp://user:s3cret@host:21/path")
    assert "s3cret" not in str(parsed)
    assert "s3cret" not in repr(parsed)
    assert str(parsed) == "ftp://user:***@host:21/path"
    assert parsed.to_string(reveal=True) == "ftp://user:s3cret@host:21/path"
    with pytest.raises(ValueError) as info:
        parse("ftp://user:s3cret@host:badport/path")
    assert "s3cret" not in str(info.value)
    assert uris.redact("sftp://u:pw@h/p") == "sftp://u:***@h/p"


def test_derived_views() -> None:
    assert parse("s3://bucket/a/b").key == "a/b"
    assert parse("s3://bucket/a/b").bucket == "bucket"
    wasbs = parse("wasbs://cont@acct.blob.core.windows.net/x")
    assert (wasbs.bucket, wasbs.account) == ("cont", "acct")
    abfss = parse("abfss://fs@acct.dfs.core.windows.net/x")
    assert (abfss.bucket, abfss.account) == ("fs", "acct")
    runs = parse("runs:/abc/model/MLmodel")
    assert (runs.run_id, runs.run_relative_path) == ("abc", "model/MLmodel")
    assert parse("runs:/abc").run_relative_path == ""
    assert parse("file:///tmp/with%20space").local_path == "/tmp/with space"
    assert parse("C:\\x").is_local


def test_parse_is_idempotent_on_parsed_values() -> None:
    parsed = parse("gs://b/p")
    assert parse(parsed) is parsed


def test_with_path_keeps_everything_else() -> None:
    parsed = parse("sftp://user:pw@host:22/a").with_path("/b/c")
    assert parsed.to_string(reveal=True) == "sftp://user:pw@host:22/b/c"


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(42)  # type: ignore[arg-type]
