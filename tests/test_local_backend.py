"""The local backend's guarantees: atomic writes, MLflow's reserved upload names, root confinement."""

from __future__ import annotations

import gc
import os
import pickle
from pathlib import Path

import pytest
from fsspec.implementations.dirfs import DirFileSystem

import artifact_fs
from artifact_fs.backends import local
from artifact_fs.backends.local import ArtifactLocalFileSystem
from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.paths import RESERVED_PREFIX


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def fs(root: Path) -> ArtifactLocalFileSystem:
    filesystem, _ = artifact_fs.url_to_fs(root.as_uri())
    assert isinstance(filesystem, ArtifactLocalFileSystem)
    return filesystem


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(RESERVED_PREFIX))


# -- atomic writes --------------------------------------------------------------------------------
def test_an_open_write_is_invisible_until_close(fs: ArtifactLocalFileSystem, root: Path) -> None:
    with fs.open(str(root / "a.bin"), "wb") as f:
        f.write(b"partial")
        f.flush()
        assert not (root / "a.bin").exists()
        assert leftovers(root) != []  # the hidden temporary sits in the destination directory
        assert fs.ls(str(root)) == []
    assert (root / "a.bin").read_bytes() == b"partial"
    assert leftovers(root) == []


def test_an_overwrite_shows_the_old_content_until_close(fs: ArtifactLocalFileSystem, root: Path) -> None:
    (root / "a.bin").write_bytes(b"old")
    with fs.open(str(root / "a.bin"), "wb") as f:
        f.write(b"new content")
        f.flush()
        assert (root / "a.bin").read_bytes() == b"old"
    assert (root / "a.bin").read_bytes() == b"new content"


def test_an_exception_inside_the_with_block_discards_the_write(
    fs: ArtifactLocalFileSystem, root: Path
) -> None:
    (root / "a.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError), fs.open(str(root / "a.bin"), "wb") as f:
        f.write(b"half")
        raise RuntimeError("upload failed")
    assert (root / "a.bin").read_bytes() == b"old"
    assert leftovers(root) == []


def test_a_file_dropped_without_close_is_discarded(fs: ArtifactLocalFileSystem, root: Path) -> None:
    f = fs.open(str(root / "dropped.bin"), "wb")
    f.write(b"never closed")
    del f
    gc.collect()
    assert not (root / "dropped.bin").exists()
    assert leftovers(root) == []


def test_a_transaction_publishes_only_on_success(fs: ArtifactLocalFileSystem, root: Path) -> None:
    with fs.transaction:
        with fs.open(str(root / "t.bin"), "wb") as f:
            f.write(b"committed")
        assert not (root / "t.bin").exists()
    assert (root / "t.bin").read_bytes() == b"committed"
    with pytest.raises(RuntimeError), fs.transaction:
        with fs.open(str(root / "u.bin"), "wb") as f:
            f.write(b"discarded")
        raise RuntimeError
    assert not (root / "u.bin").exists()
    assert leftovers(root) == []


def test_new_files_get_the_umask_mode(fs: ArtifactLocalFileSystem, root: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    fs.pipe_file(str(root / "mode.bin"), b"x")
    assert (root / "mode.bin").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("operation", ["pipe_file", "put_file", "cp_file", "get_file"])
def test_every_write_path_replaces_rather_than_rewrites(
    fs: ArtifactLocalFileSystem, root: Path, tmp_path: Path, operation: str
) -> None:
    """A new inode proves the destination was swapped in whole, never truncated and rewritten."""
    source = tmp_path / "source.bin"
    source.write_bytes(b"new bytes")
    (root / "src.bin").write_bytes(b"new bytes")
    destination = root / "dest.bin"
    destination.write_bytes(b"old")
    before = destination.stat().st_ino
    if operation == "pipe_file":
        fs.pipe_file(str(destination), b"new bytes")
    elif operation == "put_file":
        fs.put_file(str(source), str(destination))
    elif operation == "cp_file":
        fs.cp_file(str(root / "src.bin"), str(destination))
    else:
        destination = tmp_path / "downloaded.bin"
        destination.write_bytes(b"old")
        before = destination.stat().st_ino
        fs.get_file(str(root / "src.bin"), str(destination))
    assert destination.read_bytes() == b"new bytes"
    assert destination.stat().st_ino != before
    assert leftovers(root) == [] and leftovers(destination.parent) == []


def test_exclusive_create_refuses_an_existing_file(fs: ArtifactLocalFileSystem, root: Path) -> None:
    (root / "x.bin").write_bytes(b"original")
    with pytest.raises(FileExistsError):
        fs.open(str(root / "x.bin"), "xb")
    with pytest.raises(FileExistsError):
        fs.pipe_file(str(root / "x.bin"), b"other", mode="create")
    assert (root / "x.bin").read_bytes() == b"original"


def test_exclusive_create_loses_a_race_without_clobbering(fs: ArtifactLocalFileSystem, root: Path) -> None:
    f = fs.open(str(root / "race.bin"), "xb")
    f.write(b"loser")
    (root / "race.bin").write_bytes(b"winner")  # another writer gets there first
    with pytest.raises(FileExistsError):
        f.close()
    assert (root / "race.bin").read_bytes() == b"winner"
    assert leftovers(root) == []


def test_mv_moves_files_and_directories(fs: ArtifactLocalFileSystem, root: Path) -> None:
    fs.pipe_file(str(root / "d" / "a.bin"), b"a")
    fs.mv(str(root / "d" / "a.bin"), str(root / "e" / "b.bin"))
    assert (root / "e" / "b.bin").read_bytes() == b"a"
    fs.mv(str(root / "e"), str(root / "f"))
    assert (root / "f" / "b.bin").read_bytes() == b"a"


def test_a_copy_across_devices_is_atomic(root: Path) -> None:
    """``mv`` falls back to a copy when rename cannot work (here: /dev/shm is another filesystem)."""
    if not os.path.isdir("/dev/shm"):
        pytest.fail("/dev/shm is needed for a cross-device move")
    fs = ArtifactLocalFileSystem()
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        source = Path(other) / "s.bin"
        source.write_bytes(b"across devices")
        fs.mv(str(source), str(root / "moved.bin"))
    assert (root / "moved.bin").read_bytes() == b"across devices"
    assert leftovers(root) == []


# -- reserved names -------------------------------------------------------------------------------
RESERVED = RESERVED_PREFIX + "abc"


@pytest.mark.parametrize("operation", ["open", "pipe_file", "put_file", "cp_file", "mv", "touch", "makedirs"])
def test_writing_a_reserved_name_is_refused(
    fs: ArtifactLocalFileSystem, root: Path, tmp_path: Path, operation: str
) -> None:
    (root / "src.bin").write_bytes(b"x")
    (tmp_path / "local.bin").write_bytes(b"x")
    destination = str(root / "sub" / RESERVED)
    calls = {
        "open": lambda: fs.open(destination, "wb"),
        "pipe_file": lambda: fs.pipe_file(destination, b"x"),
        "put_file": lambda: fs.put_file(str(tmp_path / "local.bin"), destination),
        "cp_file": lambda: fs.cp_file(str(root / "src.bin"), destination),
        "mv": lambda: fs.mv(str(root / "src.bin"), destination),
        "touch": lambda: fs.touch(destination),
        "makedirs": lambda: fs.makedirs(destination),
    }
    with pytest.raises(ValueError, match="reserved for uploads in progress"):
        calls[operation]()
    assert not os.path.lexists(destination)


def test_reserved_names_are_hidden(fs: ArtifactLocalFileSystem, root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / RESERVED).write_bytes(b"in progress")
    (root / "d" / "visible.bin").write_bytes(b"done")
    assert fs.ls(str(root / "d"), detail=False) == [str(root / "d" / "visible.bin")]
    assert [e["name"] for e in fs.ls(str(root / "d"), detail=True)] == [str(root / "d" / "visible.bin")]
    assert fs.find(str(root)) == [str(root / "d" / "visible.bin")]
    assert fs.glob(str(root / "d" / "*")) == [str(root / "d" / "visible.bin")]
    assert not fs.exists(str(root / "d" / RESERVED))
    with pytest.raises(FileNotFoundError):
        fs.info(str(root / "d" / RESERVED))
    with pytest.raises(FileNotFoundError):
        fs.cat_file(str(root / "d" / RESERVED))


def test_the_store_hides_and_refuses_reserved_names(root: Path, tmp_path: Path) -> None:
    store = artifact_fs.ArtifactStore(str(root))
    (root / RESERVED).write_bytes(b"in progress")
    (tmp_path / RESERVED).write_bytes(b"x")
    assert store.list_artifacts() == []
    with pytest.raises(ValueError):
        store.log_artifact(str(tmp_path / RESERVED))


# -- confinement ----------------------------------------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(b"secret")
    return path


@pytest.mark.parametrize("operation", ["cat_file", "open", "ls", "info", "pipe_file", "rm", "cp_file"])
def test_a_symlink_out_of_the_root_is_refused(
    fs: ArtifactLocalFileSystem, root: Path, outside: Path, operation: str
) -> None:
    (root / "escape").symlink_to(outside)
    through = str(root / "escape" / "secret.txt")
    calls = {
        "cat_file": lambda: fs.cat_file(through),
        "open": lambda: fs.open(through, "rb"),
        "ls": lambda: fs.ls(str(root / "escape")),
        "info": lambda: fs.info(through),
        "pipe_file": lambda: fs.pipe_file(through, b"overwritten"),
        "rm": lambda: fs.rm(through),
        "cp_file": lambda: fs.cp_file(through, str(root / "copy.txt")),
    }
    with pytest.raises(InvalidArtifactPathError) as caught:
        calls[operation]()
    assert isinstance(caught.value, PermissionError) and isinstance(caught.value, ValueError)
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert not fs.exists(through)


def test_dot_dot_out_of_the_root_is_refused(fs: ArtifactLocalFileSystem, root: Path, outside: Path) -> None:
    with pytest.raises(InvalidArtifactPathError):
        fs.cat_file(str(root) + "/../outside/secret.txt")


def test_a_symlink_inside_the_root_is_followed(fs: ArtifactLocalFileSystem, root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_bytes(b"inside")
    (root / "alias").symlink_to(root / "real")
    assert fs.cat_file(str(root / "alias" / "f.txt")) == b"inside"


def test_the_store_cannot_be_escaped_through_a_symlink(root: Path, outside: Path, tmp_path: Path) -> None:
    (root / "escape").symlink_to(outside)
    store = artifact_fs.ArtifactStore(str(root))
    with pytest.raises(PermissionError):
        store.download_artifacts("escape/secret.txt", str(tmp_path))
    with pytest.raises(PermissionError):
        store.list_artifacts("escape")


def test_without_a_root_any_path_is_allowed(root: Path, outside: Path) -> None:
    fs = local.filesystem({"auto_mkdir": True, "root": None})
    assert fs.cat_file(str(outside / "secret.txt")) == b"secret"


def test_pickling_keeps_the_root(fs: ArtifactLocalFileSystem, root: Path, outside: Path) -> None:
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.root == fs.root == str(root)
    with pytest.raises(InvalidArtifactPathError):
        clone.cat_file(str(outside / "secret.txt"))


def test_a_directory_in_the_root_wrapper_stays_confined(fs: ArtifactLocalFileSystem, root: Path) -> None:
    (root / "escape").symlink_to("/etc")
    wrapped = DirFileSystem(path=str(root), fs=fs)
    with pytest.raises(PermissionError):
        wrapped.cat_file("escape/hostname")


# -- locations ------------------------------------------------------------------------------------
def test_relative_paths_resolve_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fs, path = artifact_fs.url_to_fs("mlruns/0/run/artifacts")
    assert path == str(tmp_path / "mlruns" / "0" / "run" / "artifacts")
    fs.pipe_file(path + "/a.txt", b"relative")
    assert (tmp_path / "mlruns" / "0" / "run" / "artifacts" / "a.txt").read_bytes() == b"relative"


def test_an_absolute_path_root_is_the_same_store_as_its_file_uri(root: Path, tmp_path: Path) -> None:
    """What an NFS mount gets: a plain absolute path behaves exactly like ``file://``."""
    source = tmp_path / "upload"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"a")
    (source / "sub" / "b.bin").write_bytes(b"bb")
    by_path = artifact_fs.ArtifactStore(str(root))
    by_uri = artifact_fs.ArtifactStore(root.as_uri())
    by_path.log_artifacts(str(source), "logged")
    assert by_uri.list_artifacts("logged") == by_path.list_artifacts("logged")
    assert [(i.path, i.is_dir, i.file_size) for i in by_uri.list_artifacts("logged")] == [
        ("logged/a.txt", False, 1),
        ("logged/sub", True, None),
    ]
    fs_path, path = artifact_fs.url_to_fs(str(root))
    fs_uri, uri_path = artifact_fs.url_to_fs(root.as_uri())
    assert path == uri_path and type(fs_path) is type(fs_uri)
    assert fs_path.find(path, detail=True).keys() == fs_uri.find(uri_path, detail=True).keys()
    assert fs_uri.cat_file(uri_path + "/logged/sub/b.bin") == b"bb"


def test_options_default_and_overrides(root: Path) -> None:
    parsed = artifact_fs.parse(str(root))
    assert local.options(parsed, {}) == {"auto_mkdir": True, "root": str(root)}
    assert local.options(parsed, {}, root=None)["root"] is None


def test_a_compressed_write_is_complete_when_it_appears(fs: ArtifactLocalFileSystem, root: Path) -> None:
    import gzip

    with fs.open(str(root / "c.gz"), "wb", compression="gzip") as f:
        f.write(b"compressed " * 1000)
    assert gzip.decompress((root / "c.gz").read_bytes()) == b"compressed " * 1000
    assert leftovers(root) == []
