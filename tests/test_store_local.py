"""What MLflow's LocalArtifactRepository does beyond the shared contract (reference §2.3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artifact_fs import errors
from artifact_fs.paths import RESERVED_PREFIX
from artifact_fs.store import ArtifactStore, FileInfo, default_max_workers


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def test_download_without_destination_returns_the_artifact_in_place(
    store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    store.log_artifact(tmp_path / "f.txt", "d")
    assert store.download_artifacts("d/f.txt") == str(tmp_path / "artifacts" / "d" / "f.txt")
    assert store.download_artifacts() == str(tmp_path / "artifacts")


def test_download_without_destination_of_a_missing_artifact_raises(
    store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    store.log_artifact(tmp_path / "f.txt")
    with pytest.raises(FileNotFoundError, match="No such artifact"):
        store.download_artifacts("missing.txt")


def test_log_artifact_onto_itself_is_a_noop(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"keep me")
    store.log_artifact(tmp_path / "f.txt")
    in_place = Path(store.download_artifacts("f.txt"))
    store.log_artifact(in_place)
    assert in_place.read_bytes() == b"keep me"


def test_reserved_upload_names_are_refused_and_hidden(store: ArtifactStore, tmp_path: Path) -> None:
    reserved = tmp_path / f"{RESERVED_PREFIX}abc"
    reserved.write_bytes(b"partial")
    with pytest.raises(errors.InvalidArtifactPathError, match="reserved"):
        store.log_artifact(reserved)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    (tmp_path / "artifacts" / f"{RESERVED_PREFIX}xyz").write_bytes(b"partial")
    (tmp_path / "artifacts" / "visible.txt").write_bytes(b"v")
    assert store.list_artifacts() == [FileInfo("visible.txt", False, 1)]


def test_delete_of_root_removes_the_root_directory(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    store.log_artifact(tmp_path / "f.txt")
    store.delete_artifacts()
    assert not (tmp_path / "artifacts").exists()


def test_an_empty_directory_downloads_as_a_directory(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "artifacts" / "empty").mkdir(parents=True)
    dst = tmp_path / "dst"
    dst.mkdir()
    assert store.download_artifacts("empty", dst) == str(dst / "empty")
    assert (dst / "empty").is_dir()


def test_relative_and_file_uris_name_the_same_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = ArtifactStore("mlruns/0/abc/artifacts")
    absolute = ArtifactStore((tmp_path / "mlruns" / "0" / "abc" / "artifacts").as_uri())
    assert relative.root_path == absolute.root_path == str(tmp_path / "mlruns" / "0" / "abc" / "artifacts")


def test_for_run_uses_mlflow_run_layout(tmp_path: Path) -> None:
    store = ArtifactStore.for_run(str(tmp_path / "mlruns" / "0"), "abc123")
    assert store.root_path == str(tmp_path / "mlruns" / "0" / "abc123" / "artifacts")


def test_default_pool_size_is_mlflows() -> None:
    assert default_max_workers() == min((os.cpu_count() or 10) * 2, 20)


def test_max_workers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ArtifactStore(str(tmp_path), max_workers=0)


def test_file_info_compares_all_fields_like_mlflow() -> None:
    assert FileInfo("a", False, 1) == FileInfo("a", False, 1)
    assert FileInfo("a", False, 1) != FileInfo("a", False, 2)
    assert FileInfo("d", True, None).to_dict() == {"path": "d", "is_dir": True, "file_size": None}
    with pytest.raises(AttributeError):
        FileInfo("a", False, 1).path = "b"  # type: ignore[misc]


def test_store_exposes_its_parts(store: ArtifactStore, tmp_path: Path) -> None:
    assert store.backend.__name__ == "artifact_fs.backends.local"
    assert store.capabilities.empty_directories
    assert store.fs.path == store.root_path
    assert str(store.uri) == str(tmp_path / "artifacts")
    assert repr(store) == f"ArtifactStore({str(tmp_path / 'artifacts')!r})"
