"""What a local tree transfer costs per file, counted rather than timed (issue #13: local uploads
as cheap as a copy). A tree of small files is copied in the calling thread (a hand-off to the pool
costs more than the copy), resolves no path per file (the root once, then one ``lstat`` per name
below it) and makes each directory once, not once per file."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from artifact_fs import store as store_module
from artifact_fs.backends import local
from artifact_fs.backends.local import ArtifactLocalFileSystem
from artifact_fs.store import ArtifactStore

FILES = 60
DIRECTORIES = 3


def _tree(root: Path) -> dict[str, bytes]:
    contents = {f"d{index % DIRECTORIES}/f{index}.bin": os.urandom(4096 + index) for index in range(FILES)}
    contents["d0/large.bin"] = os.urandom(store_module.INLINE_HASH_LIMIT + 1)
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


def _read(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_small_files_of_a_local_tree_are_copied_in_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = _tree(tmp_path / "tree")
    caller = threading.get_ident()
    pooled: list[str] = []

    def where(method: Any) -> Any:
        def wrapper(self: Any, source: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != caller:
                pooled.append(os.path.basename(str(source)))
            return method(self, source, destination, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(ArtifactLocalFileSystem, "put_file", where(ArtifactLocalFileSystem.put_file))
    monkeypatch.setattr(ArtifactLocalFileSystem, "get_file", where(ArtifactLocalFileSystem.get_file))
    store = ArtifactStore(str(tmp_path / "root"))
    store.log_artifacts(str(tmp_path / "tree"))
    assert pooled == ["large.bin"]

    pooled.clear()
    (tmp_path / "out").mkdir()
    store.download_artifacts("", str(tmp_path / "out"))
    assert pooled == ["large.bin"]
    assert _read(tmp_path / "out") == contents


def test_a_local_tree_resolves_no_path_and_makes_no_directory_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = _tree(tmp_path / "tree")
    store = ArtifactStore(str(tmp_path / "root"))
    (tmp_path / "out").mkdir()
    calls: Counter[str] = Counter()

    def counted(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(os.path, "realpath", counted("realpath", os.path.realpath))
    monkeypatch.setattr(os, "makedirs", counted("makedirs", os.makedirs))
    store.log_artifacts(str(tmp_path / "tree"))
    uploaded = calls.copy()
    calls.clear()
    store.download_artifacts("", str(tmp_path / "out"))
    downloaded = calls.copy()

    assert _read(tmp_path / "root") == contents
    assert _read(tmp_path / "out") == contents
    # A few resolutions (the roots, once each; fully until a new root exists), not 2-3 per file as
    # before; directories made once each (by the store's walk), not once per file.
    for counts in (uploaded, downloaded):
        assert counts["realpath"] <= 5, counts
        assert counts["makedirs"] <= DIRECTORIES + 3, counts


def test_writes_through_open_make_a_directory_only_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's uploads to a local destination write through ``open(..., "wb")``: a file in an
    existing directory makes none (it used to look for its parents every time), a file in a new one
    makes it."""
    fs = ArtifactLocalFileSystem(root=str(tmp_path))
    (tmp_path / "d").mkdir()
    made: list[str] = []
    real_makedirs = os.makedirs

    def makedirs(name: Any, *args: Any, **kwargs: Any) -> None:
        made.append(os.path.relpath(name, tmp_path))
        real_makedirs(name, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", makedirs)
    for index in range(10):
        with fs.open(str(tmp_path / "d" / f"f{index}.txt"), "wb") as f:
            f.write(b"x" * index)
    assert made == []
    with fs.open(str(tmp_path / "new" / "deeper" / "g.txt"), "wb") as f:
        f.write(b"g")
    assert made[0] == os.path.join("new", "deeper") and set(made) <= {"new", os.path.join("new", "deeper")}
    assert (tmp_path / "new" / "deeper" / "g.txt").read_bytes() == b"g"
    assert sorted(os.listdir(tmp_path / "d")) == sorted(f"f{index}.txt" for index in range(10))


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export /mnt/nfs nfs4 rw,relatime 0 0
/dev/vdb /mnt/nfs/local-inside ext4 rw 0 0
sshfs#me@host: /mnt/with\\040space fuse.sshfs rw 0 0
tmpfs /tmp tmpfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "network"),
    [
        ("/home/run/artifacts", False),
        ("/mnt/nfs", True),
        ("/mnt/nfs/experiments/1/artifacts", True),
        ("/mnt/nfs/local-inside/artifacts", False),
        ("/mnt/nfsother/artifacts", False),
        ("/mnt/with space/artifacts", True),
        ("/tmp/artifacts", False),
    ],
)
def test_a_root_on_a_network_mount_is_known_by_its_longest_mount_point(path: str, network: bool) -> None:
    assert local.on_network_filesystem(path, MOUNTS) is network


def test_small_files_go_on_the_pool_where_the_root_is_on_a_network_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file operation on NFS waits on a round trip: there the pool's threads overlap them."""
    assert ArtifactStore(str(tmp_path / "disk")).capabilities.local_copies  # this machine's disk
    monkeypatch.setattr(local, "on_network_filesystem", lambda path: True)
    store = ArtifactStore(str(tmp_path / "nfs"))
    assert not store.capabilities.local_copies
    contents = _tree(tmp_path / "tree")
    caller = threading.get_ident()
    here: list[str] = []
    real_put_file = ArtifactLocalFileSystem.put_file

    def put_file(self: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == caller:
            here.append(str(source))
        return real_put_file(self, source, *args, **kwargs)

    monkeypatch.setattr(ArtifactLocalFileSystem, "put_file", put_file)
    store.log_artifacts(str(tmp_path / "tree"))
    assert here == []
    assert _read(tmp_path / "nfs") == contents
