"""URLs: the artifact URI and fsspec's own URL forms lead back to the same filesystem and path."""

from __future__ import annotations

import artifact_fs
from conformance.harness import Target


def test_url_to_fs_of_a_child_url_names_the_child_path(target: Target) -> None:
    fs, path = artifact_fs.url_to_fs(target.url + "/sub/file.bin", **target.backend.storage_options)
    assert type(fs) is type(target.fs)
    assert fs._strip_protocol(path) == target.fs._strip_protocol(target.path("sub", "file.bin"))


def test_strip_protocol_undoes_unstrip_protocol(target: Target) -> None:
    path = target.fs._strip_protocol(target.path("sub", "file.bin"))
    url = target.fs.unstrip_protocol(path)
    assert "://" in url
    assert target.fs._strip_protocol(url) == path


def test_unstripped_url_resolves_to_the_same_filesystem_and_path(target: Target) -> None:
    target.fs.pipe_file(target.path("sub", "file.bin"), b"round trip")
    path = target.fs._strip_protocol(target.path("sub", "file.bin"))
    fs, resolved = artifact_fs.url_to_fs(target.fs.unstrip_protocol(path), **target.backend.storage_options)
    assert type(fs) is type(target.fs)
    assert fs._strip_protocol(resolved) == path
    assert fs.cat_file(resolved) == b"round trip"


def test_artifact_fs_open_reads_by_url(target: Target) -> None:
    target.fs.pipe_file(target.path("by-url.txt"), b"read by url")
    with artifact_fs.open(target.url + "/by-url.txt", **target.backend.storage_options) as f:
        assert f.read() == b"read by url"
