"""MLflow's artifact-repository contract (reference §2.0, §2.3), pinned on every backend.

Each test names the behaviour it pins. Where MLflow's object-store and directory-based repositories
differ (empty directories), the test asks for the capability. Deletes are checked through the files
that remain (a recursive walk), because SeaweedFS keeps an emptied prefix listed for about a minute
(servers.md, S3 quirk 1) although every object under it is gone.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest
from fsspec.callbacks import Callback

from artifact_fs import errors
from artifact_fs.store import ArtifactStore, FileInfo
from conformance.harness import Target


def make_tree(root: Path, files: dict[str, bytes], empty_dirs: tuple[str, ...] = ()) -> Path:
    """Write ``files`` (relative POSIX path -> bytes) and ``empty_dirs`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        path = root.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for relative in empty_dirs:
        root.joinpath(*relative.split("/")).mkdir(parents=True, exist_ok=True)
    return root


def local_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as relative POSIX path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def artifact_files(store: ArtifactStore, path: str | None = None) -> list[str]:
    """Every file under ``path``, by walking ``list_artifacts`` as MLflow's download does."""
    files: list[str] = []
    for info in store.list_artifacts(path):
        files.extend(artifact_files(store, info.path) if info.is_dir else [info.path])
    return files


TREE = {
    "a.txt": b"alpha",
    "empty.bin": b"",
    "sub/b.txt": b"bravo" * 100,
    "sub/deeper/c.json": b'{"c": 3}',
}


@pytest.fixture
def store(target: Target) -> ArtifactStore:
    return target.store()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", TREE)


# -- log_artifact ---------------------------------------------------------------------------------
def test_log_artifact_names_the_artifact_by_the_local_basename(store: ArtifactStore, tree: Path) -> None:
    store.log_artifact(tree / "sub" / "b.txt")
    assert store.list_artifacts() == [FileInfo("b.txt", False, 500)]
    with store.open("b.txt") as f:
        assert f.read() == TREE["sub/b.txt"]


def test_log_artifact_under_a_nested_artifact_path(store: ArtifactStore, tree: Path) -> None:
    store.log_artifact(str(tree / "a.txt"), "model/data")
    assert store.list_artifacts("model/data") == [FileInfo("model/data/a.txt", False, 5)]


@pytest.mark.parametrize("bad", ["/", "//", "/tmp", "/bad_path", ".", "../terrible_path", "a/../b", "a//b"])
def test_log_artifact_rejects_unnormalised_artifact_paths(store: ArtifactStore, tree: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="Invalid artifact path"):
        store.log_artifact(tree / "a.txt", bad)


def test_log_artifact_of_a_directory_is_refused(store: ArtifactStore, tree: Path) -> None:
    with pytest.raises(IsADirectoryError, match="log_artifacts"):
        store.log_artifact(tree / "sub")


# -- log_artifacts --------------------------------------------------------------------------------
def test_log_artifacts_uploads_the_contents_not_the_directory(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert [info.path for info in store.list_artifacts()] == ["a.txt", "empty.bin", "sub"]
    assert store.list_artifacts("sub/deeper") == [FileInfo("sub/deeper/c.json", False, 8)]


def test_log_artifacts_under_an_artifact_path(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(str(tree), "run/outputs")
    assert store.list_artifacts() == [FileInfo("run", True, None)]
    assert [i.path for i in store.list_artifacts("run/outputs")] == [
        "run/outputs/a.txt",
        "run/outputs/empty.bin",
        "run/outputs/sub",
    ]


def test_log_artifacts_of_a_file_is_refused(store: ArtifactStore, tree: Path) -> None:
    with pytest.raises(NotADirectoryError):
        store.log_artifacts(tree / "a.txt")


@pytest.mark.need_capability("empty_directories")
def test_log_artifacts_keeps_empty_directories(store: ArtifactStore, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"f.txt": b"x"}, empty_dirs=("empty", "nested/empty"))
    store.log_artifacts(source, "out")
    assert store.list_artifacts("out") == [
        FileInfo("out/empty", True, None),
        FileInfo("out/f.txt", False, 1),
        FileInfo("out/nested", True, None),
    ]
    assert store.list_artifacts("out/nested") == [FileInfo("out/nested/empty", True, None)]


def test_log_artifacts_of_many_files_runs_concurrently_and_keeps_every_byte(
    target: Target, tmp_path: Path
) -> None:
    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(1000 + i) for i in range(24)}
    source = make_tree(tmp_path / "many", files)
    store = target.store(max_workers=8)
    store.log_artifacts(source)
    (tmp_path / "back").mkdir()
    downloaded = store.download_artifacts(dst_path=tmp_path / "back")
    assert local_files(Path(downloaded)) == files


# -- list_artifacts -------------------------------------------------------------------------------
def test_list_gives_direct_children_sorted_with_the_prefix(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert store.list_artifacts("sub") == [
        FileInfo("sub/b.txt", False, 500),
        FileInfo("sub/deeper", True, None),
    ]


def test_list_of_root_is_the_same_for_none_empty_and_dot(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert store.list_artifacts() == store.list_artifacts("") == store.list_artifacts(".")


def test_list_with_a_trailing_slash_is_the_directory(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert store.list_artifacts("sub/") == store.list_artifacts("sub")


def test_list_of_a_file_is_empty(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert store.list_artifacts("sub/b.txt") == []


def test_list_of_a_missing_path_is_empty(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    assert store.list_artifacts("no/such/dir") == []


def test_list_of_a_missing_root_is_empty(store: ArtifactStore) -> None:
    assert store.list_artifacts() == []


def test_directories_have_no_size_and_empty_files_size_zero(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    listed = {info.path: info for info in store.list_artifacts()}
    assert listed["sub"].file_size is None
    assert listed["empty.bin"] == FileInfo("empty.bin", False, 0)


# -- download_artifacts ---------------------------------------------------------------------------
def test_download_of_a_file_returns_destination_joined_with_its_path(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    store.log_artifacts(tree)
    dst = tmp_path / "dst"
    dst.mkdir()
    result = store.download_artifacts("sub/deeper/c.json", str(dst))
    assert result == os.path.join(str(dst), "sub", "deeper", "c.json")
    assert Path(result).read_bytes() == TREE["sub/deeper/c.json"]
    assert local_files(dst) == {"sub/deeper/c.json": TREE["sub/deeper/c.json"]}


def test_download_of_a_directory_recreates_its_tree(store: ArtifactStore, tree: Path, tmp_path: Path) -> None:
    store.log_artifacts(tree)
    dst = tmp_path / "dst"
    dst.mkdir()
    result = store.download_artifacts("sub/", dst)
    assert result == os.path.join(str(dst), "sub")
    assert local_files(dst) == {k: v for k, v in TREE.items() if k.startswith("sub/")}


def test_download_of_root_returns_destination(store: ArtifactStore, tree: Path, tmp_path: Path) -> None:
    store.log_artifacts(tree)
    dst = tmp_path / "dst"
    dst.mkdir()
    assert store.download_artifacts(None, dst) == str(dst)
    assert local_files(dst) == TREE


def test_download_of_empty_root_returns_destination(store: ArtifactStore, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    assert store.download_artifacts("", dst) == str(dst)
    assert list(dst.iterdir()) == []


def test_download_to_a_missing_destination_is_refused(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    store.log_artifacts(tree)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store.download_artifacts("a.txt", tmp_path / "missing")


def test_download_to_a_file_destination_is_refused(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    with pytest.raises(NotADirectoryError, match="must be a directory"):
        store.download_artifacts("a.txt", tree / "a.txt")


def test_download_without_destination_gives_a_readable_local_path(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    result = Path(store.download_artifacts("sub"))
    assert result.is_absolute()
    assert local_files(result) == {k[len("sub/") :]: v for k, v in TREE.items() if k.startswith("sub/")}


def test_download_of_a_missing_artifact_raises_file_not_found_naming_it(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    store.log_artifacts(tree)
    with pytest.raises(FileNotFoundError) as raised:
        store.download_artifacts("nope.txt", tmp_path)
    message = str(raised.value)
    assert "The following failures occurred while downloading one or more artifacts from" in message
    assert "##### File nope.txt #####" in message
    assert isinstance(raised.value.__cause__, FileNotFoundError)
    assert not (tmp_path / "nope.txt").exists()


@pytest.mark.need_capability("empty_directories")
def test_download_recreates_empty_remote_directories(store: ArtifactStore, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", {"f.txt": b"x"}, empty_dirs=("empty", "nested/empty"))
    store.log_artifacts(source)
    dst = tmp_path / "dst"
    dst.mkdir()
    store.download_artifacts(dst_path=dst)
    assert (dst / "empty").is_dir()
    assert (dst / "nested" / "empty").is_dir()
    assert store.download_artifacts("empty", dst) == os.path.join(str(dst), "empty")


# -- delete_artifacts -----------------------------------------------------------------------------
def test_delete_of_a_file_keeps_its_siblings(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    store.delete_artifacts("sub/b.txt")
    assert artifact_files(store) == ["a.txt", "empty.bin", "sub/deeper/c.json"]


def test_delete_of_a_directory_is_recursive(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    store.delete_artifacts("sub")
    assert artifact_files(store) == ["a.txt", "empty.bin"]
    assert artifact_files(store, "sub") == []


def test_delete_of_root_removes_every_artifact(target: Target, store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    store.delete_artifacts()
    assert artifact_files(store) == []
    assert artifact_files(target.store()) == []


def test_delete_of_a_missing_path_is_a_noop(store: ArtifactStore, tree: Path) -> None:
    store.log_artifacts(tree)
    store.delete_artifacts("no/such/thing")
    assert artifact_files(store) == sorted(TREE)


def test_delete_of_a_missing_root_is_a_noop(store: ArtifactStore) -> None:
    store.delete_artifacts()
    assert artifact_files(store) == []


def test_delete_of_sibling_prefix_keeps_foobar(store: ArtifactStore, tmp_path: Path) -> None:
    source = make_tree(
        tmp_path / "src", {"foo": b"1", "foobar": b"2", "foo_dir/x": b"3", "foobar_dir/x": b"4"}
    )
    store.log_artifacts(source)
    store.delete_artifacts("foo")
    store.delete_artifacts("foo_dir")
    assert artifact_files(store) == ["foobar", "foobar_dir/x"]


# -- paths ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("escape", ["../outside", "a/../../outside", "%2e%2e/outside", "/etc/passwd"])
def test_paths_that_would_leave_the_root_are_refused(
    store: ArtifactStore, tree: Path, tmp_path: Path, escape: str
) -> None:
    operations = [
        lambda: store.list_artifacts(escape),
        lambda: store.download_artifacts(escape, tmp_path),
        lambda: store.delete_artifacts(escape),
        lambda: store.open(escape),
        lambda: store.log_artifacts(tree, escape),
    ]
    for operation in operations:
        with pytest.raises(errors.InvalidArtifactPathError):
            operation()


# -- open, progress, run roots --------------------------------------------------------------------
def test_open_writes_then_reads_an_artifact(store: ArtifactStore) -> None:
    with store.open("notes/readme.md", "wb") as f:
        f.write(b"# hello")
    with store.open("notes/readme.md") as f:
        assert f.read() == b"# hello"
    assert store.list_artifacts("notes") == [FileInfo("notes/readme.md", False, 7)]


class CountingCallback(Callback):
    """Records the sizes a caller's fsspec callback is given (the value is the byte count)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def set_size(self, size: int) -> None:
        self.sizes.append(size)
        super().set_size(size)


def test_progress_callback_sees_the_total_and_every_byte(
    store: ArtifactStore, tree: Path, tmp_path: Path
) -> None:
    total = sum(len(data) for data in TREE.values())
    upload = CountingCallback()
    store.log_artifacts(tree, callback=upload)
    assert (upload.sizes, upload.value) == ([total], total)
    download = CountingCallback()
    store.download_artifacts(dst_path=tmp_path, callback=download)
    assert (download.sizes, download.value) == ([total], total)


def test_for_run_logs_under_run_id_artifacts(target: Target, tree: Path) -> None:
    run_store = ArtifactStore.for_run(target.url, "0123abcd", **target.backend.storage_options)
    assert str(run_store.uri).endswith("/0123abcd/artifacts")
    run_store.log_artifact(tree / "a.txt")
    assert target.fs.cat_file(posixpath.join(target.root, "0123abcd", "artifacts", "a.txt")) == b"alpha"


def test_a_larger_file_round_trips_unchanged(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store.log_artifact(source, "blobs")
    dst = tmp_path / "dst"
    dst.mkdir()
    assert Path(store.download_artifacts("blobs/big.bin", dst)).read_bytes() == data
    assert store.list_artifacts("blobs") == [FileInfo("blobs/big.bin", False, len(data))]
