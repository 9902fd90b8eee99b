"""Each S3 filesystem's botocore session shares one data loader: S3's service model and endpoint
rules are read and parsed once per process, not once per filesystem (about 50 ms a client, issue #13)."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import pytest

from artifact_fs.backends.s3 import ArtifactS3FileSystem


def _filesystem() -> ArtifactS3FileSystem:
    return ArtifactS3FileSystem(
        endpoint_url="http://127.0.0.1:9", key="key", secret="secret", skip_instance_cache=True
    )


def test_a_second_filesystem_reads_none_of_botocore_s_model_files(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _filesystem(), _filesystem()
    first.connect()
    read: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        read.append(file_path)
        return load_file(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counting)
    second.connect()

    assert first.session is not second.session and first.s3 is not second.s3
    assert second.session.get_component("data_loader") is first.session.get_component("data_loader")
    assert read == []
    third = _filesystem()  # and a third: still nothing read
    third.connect()
    assert read == []
