"""Which destinations the server may advertise presigned transfers for, decided by the backend's hooks."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from artifact_fs import uris
from artifact_fs.errors import MultipartUnsupportedError
from artifact_fs.policy import TransferPolicy
from artifact_fs.root import ArtifactRoot


def _destination(backend: ModuleType, uri: str) -> ArtifactRoot:
    return ArtifactRoot(uris.parse(uri), backend, MemoryFileSystem(), "/root", {}, TransferPolicy())


@pytest.mark.parametrize(
    ("module", "uri", "reason"),
    [
        ("ftp", "ftp://host/root", "FTP has no presigned URLs"),
        ("sftp", "sftp://user@host/root", "SFTP has no presigned URLs"),
        ("local", "/tmp/root", "no presign hooks"),
    ],
)
def test_backends_without_presign_hooks_are_never_advertised(module: str, uri: str, reason: str) -> None:
    destination = _destination(importlib.import_module(f"artifact_fs.backends.{module}"), uri)
    assert not destination.supports_multipart_upload
    assert not destination.supports_presigned_download
    with pytest.raises(MultipartUnsupportedError, match=reason):
        destination.call_hook("create_multipart_upload", "model.bin", 2)


@pytest.mark.parametrize(
    ("module", "uri"),
    [
        ("s3", "s3://bucket/root"),
        ("gcs", "gs://bucket/root"),
        ("azure", "wasbs://container@account.blob.core.windows.net/root"),
    ],
)
def test_backends_with_presign_hooks_support_both(module: str, uri: str) -> None:
    destination = _destination(importlib.import_module(f"artifact_fs.backends.{module}"), uri)
    assert destination.supports_multipart_upload
    assert destination.supports_presigned_download
