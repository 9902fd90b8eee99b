"""The store against hostile or failing filesystems: listings are input, failures are aggregated.

A hostile backend is a real ``LocalFileSystem`` whose ``ls`` adds the entries a malicious server
could send; the store must refuse them before any local path is built from them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.local import LocalFileSystem

from artifact_fs import errors
from artifact_fs.store import ERROR_MESSAGE_LIMIT, ArtifactStore, FileInfo, transfer_error


class ExtraEntriesFileSystem(LocalFileSystem):
    """Lists what is on disk plus ``extra`` names (relative to the listed directory, or absolute)."""

    def __init__(self, extra: list[str], entry_type: str = "file", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra = extra
        self.entry_type = entry_type

    def ls(self, path: str, detail: bool = False, **kwargs: Any) -> list[Any]:
        listing = super().ls(path, detail=True, **kwargs)
        for name in self.extra:
            full = name if name.startswith("/") else f"{path.rstrip('/')}/{name}"
            listing.append({"name": full, "type": self.entry_type, "size": 1})
        return listing if detail else [entry["name"] for entry in listing]


class FailingGetFileSystem(LocalFileSystem):
    """Every download fails with ``error``; used to check aggregation."""

    def __init__(self, error: BaseException, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        raise self.error


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "real.txt").write_bytes(b"real")
    return root


def hostile_store(root: Path, extra: list[str], entry_type: str = "file") -> ArtifactStore:
    fs = ExtraEntriesFileSystem(extra, entry_type, skip_instance_cache=True)
    return ArtifactStore(str(root), filesystem=fs)


@pytest.mark.parametrize("name", ["..", "%2e%2e", "..%2fescape", "a#b", "c:evil"])
def test_listing_with_dotdot_name_is_rejected(root: Path, name: str) -> None:
    store = hostile_store(root, [name])
    with pytest.raises(errors.InvalidArtifactPathError):
        store.list_artifacts("dir")


def test_listing_with_a_name_outside_the_directory_is_rejected(root: Path) -> None:
    store = hostile_store(root, ["/etc/passwd"])
    with pytest.raises(errors.InvalidArtifactPathError, match="not inside that directory"):
        store.list_artifacts("dir")


def test_listing_with_a_nested_name_is_rejected(root: Path) -> None:
    store = hostile_store(root, ["x/../../y"])
    with pytest.raises(errors.InvalidArtifactPathError):
        store.list_artifacts("dir")
    store = hostile_store(root, ["x/y"])
    with pytest.raises(errors.InvalidArtifactPathError, match="nested"):
        store.list_artifacts("dir")


def test_download_with_a_hostile_listing_writes_nothing_outside(root: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    store = hostile_store(root, [".."], entry_type="directory")
    with pytest.raises(errors.InvalidArtifactPathError):
        store.download_artifacts("dir", dst)
    assert list(dst.iterdir()) == []


def test_dot_and_self_entries_are_skipped_so_downloads_terminate(root: Path, tmp_path: Path) -> None:
    # MLflow's infinite-loop guard: a server that lists "." or the directory itself as a child.
    store = hostile_store(root, [".", ""], entry_type="directory")
    assert store.list_artifacts("dir") == [FileInfo("dir/real.txt", False, 4)]
    dst = tmp_path / "dst"
    dst.mkdir()
    assert store.download_artifacts("dir", dst) == str(dst / "dir")
    assert (dst / "dir" / "real.txt").read_bytes() == b"real"


def test_download_into_a_symlink_that_leaves_the_destination_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "dir").symlink_to(outside, target_is_directory=True)
    store = ArtifactStore(str(root))
    with pytest.raises(errors.InvalidArtifactPathError, match="outside"):
        store.download_artifacts("dir", dst)
    assert list(outside.iterdir()) == []


def test_download_failures_are_aggregated_truncated_and_keep_the_first_cause(
    root: Path, tmp_path: Path
) -> None:
    for index in range(300):
        (root / "dir" / f"file-with-a-rather-long-name-{index:04d}.txt").write_bytes(b"x")
    cause = FileNotFoundError(2, "gone")
    store = ArtifactStore(str(root), filesystem=FailingGetFileSystem(cause, skip_instance_cache=True))
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(FileNotFoundError) as raised:
        store.download_artifacts("dir", dst)
    message = str(raised.value)
    assert f"The following failures occurred while downloading one or more artifacts from {root}:" in message
    assert "##### File dir/file-with-a-rather-long-name-0000.txt #####" in message  # head kept
    assert "##### File dir/real.txt #####" in message  # tail kept
    assert "characters truncated" in message
    assert len(raised.value.strerror) <= ERROR_MESSAGE_LIMIT
    assert raised.value.__cause__ is cause
    assert len(raised.value.failures) == 301  # type: ignore[attr-defined]
    assert not any(p.is_file() for p in dst.rglob("*"))  # no partial files left behind


def test_mixed_failures_raise_a_plain_oserror() -> None:
    error = transfer_error(
        {"a": FileNotFoundError(2, "gone"), "b": PermissionError(13, "denied")}, "uploading", "to", "s3://b/p"
    )
    assert type(error) is OSError
    assert error.strerror.startswith(
        "The following failures occurred while uploading one or more artifacts to"
    )


def test_upload_failures_are_aggregated_per_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.txt").write_bytes(b"ok")
    os.symlink(tmp_path / "missing-target", source / "broken.txt")
    store = ArtifactStore(str(tmp_path / "root"))
    with pytest.raises(FileNotFoundError) as raised:
        store.log_artifacts(source)
    assert "##### File broken.txt #####" in str(raised.value)
    assert store.list_artifacts() == [FileInfo("ok.txt", False, 2)]
