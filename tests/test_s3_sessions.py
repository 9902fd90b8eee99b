"""S3 filesystems share what botocore makes slowly (no server: making a client and resolving its
credentials are local):

* one botocore session per event loop and credential environment (~4 ms a filesystem);
* one data loader for every session: S3's service model and endpoint rules are read and parsed
  once per process, not once per session (about 50 ms a client, issue #13).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest
from aiobotocore.session import AioSession
from fsspec.asyn import sync

from artifact_fs.backends import s3, s3_small


def _fs(**options: Any) -> s3.ArtifactS3FileSystem:
    return s3.ArtifactS3FileSystem(endpoint_url="http://127.0.0.1:9", skip_instance_cache=True, **options)


def _access_key(fs: s3.ArtifactS3FileSystem) -> str:
    credentials = sync(fs.loop, s3_small._frozen_credentials, fs.connect())
    return str(credentials.access_key)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A credential environment of the test's own: keys in the environment, config files in tmp_path."""
    unset = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN")
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return tmp_path


def test_filesystems_of_one_environment_share_a_configured_session(aws_environment: Path) -> None:
    first, second = _fs(), _fs()
    first.connect()
    second.connect()
    assert first is not second
    assert first.session is second.session
    assert first._s3 is not second._s3  # each keeps its own client (and connection pool)
    assert _access_key(first) == _access_key(second) == "AKIAFIRST"


def test_changed_credential_variables_get_a_new_session_and_the_new_keys(
    aws_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _fs()
    assert _access_key(before) == "AKIAFIRST"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECOND")
    after = _fs()
    assert _access_key(after) == "AKIASECOND"
    assert after.session is not before.session


def test_an_edited_config_file_gets_a_new_session(aws_environment: Path) -> None:
    config = aws_environment / "config"
    config.write_text("[default]\nregion = eu-west-1\n")
    before = _fs()
    before.connect()
    config.write_text("[default]\nregion = eu-central-1\n")
    after = _fs()
    after.connect()
    assert after.session is not before.session
    assert after.session.get_scoped_config()["region"] == "eu-central-1"  # the file, not AWS_DEFAULT_REGION
    assert before.session.get_scoped_config()["region"] == "eu-west-1"


def test_another_event_loop_gets_its_own_session(aws_environment: Path) -> None:
    shared = _fs()
    shared.connect()

    async def elsewhere() -> Any:
        fs = _fs(asynchronous=True)
        client = await fs.set_session()
        try:
            return fs.session
        finally:
            await client.close()

    assert asyncio.run(elsewhere()) is not shared.session


def test_a_session_passed_in_is_used_as_given(aws_environment: Path) -> None:
    mine = AioSession()
    fs = _fs(session=mine)
    fs.connect()
    assert fs.session is mine
    assert _access_key(fs) == "AKIAFIRST"


def test_a_session_of_another_environment_reads_none_of_botocore_s_model_files(
    aws_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _fs()
    first.connect()
    read: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        read.append(file_path)
        return load_file(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counting)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHER")
    second = _fs()
    second.connect()

    assert first.session is not second.session and first.s3 is not second.s3
    assert second.session.get_component("data_loader") is first.session.get_component("data_loader")
    assert read == []
    third = _fs()  # and a third, sharing the second's session: still nothing read
    third.connect()
    assert third.session is second.session
    assert read == []
