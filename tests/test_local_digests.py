"""Digest records of local artifacts: the file's own extended attribute, a sidecar where there is none."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from artifact_fs import integrity
from artifact_fs.backends import local
from artifact_fs.backends.local_digests import ATTRIBUTE, HAS_XATTRS, XattrDigests
from artifact_fs.store import ArtifactStore

pytestmark = pytest.mark.skipif(not HAS_XATTRS, reason="this platform's os module has no *xattr calls")
DIGEST = integrity.Record(
    (integrity.Digest("sha-256", bytes(range(32))), integrity.Digest("crc32c", b"\x01\x02\x03\x04"))
)


@pytest.fixture
def fs(tmp_path: Path) -> local.ArtifactLocalFileSystem:
    return local.ArtifactLocalFileSystem(root=str(tmp_path))


def test_the_local_backend_keeps_digests_in_an_attribute() -> None:
    assert isinstance(local.DIGESTS, XattrDigests)
    assert local.DIGESTS.cheap_lookup


def test_a_record_is_the_files_attribute_and_nothing_beside_it(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path
) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    XattrDigests().record(fs, str(artifact), DIGEST)
    assert os.getxattr(artifact, ATTRIBUTE) == DIGEST.header().encode()
    assert XattrDigests().lookup(fs, str(artifact), None) == DIGEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_a_file_without_a_record_or_no_file_has_no_digest(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path
) -> None:
    (tmp_path / "plain.txt").write_bytes(b"x")
    assert XattrDigests().lookup(fs, str(tmp_path / "plain.txt"), None) is None
    assert XattrDigests().lookup(fs, str(tmp_path / "missing.txt"), None) is None


def test_an_attribute_too_long_for_a_digest_is_refused(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path
) -> None:
    artifact = tmp_path / "odd.bin"
    artifact.write_bytes(b"x")
    os.setxattr(artifact, ATTRIBUTE, b"x" * (integrity.SIDECAR_LIMIT + 1))
    with pytest.raises(ValueError, match="not a digest record"):
        XattrDigests().lookup(fs, str(artifact), None)


def test_without_extended_attributes_the_record_falls_back_to_a_sidecar(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", unsupported)
    monkeypatch.setattr(os, "getxattr", unsupported)
    artifact = tmp_path / "d" / "model.bin"
    artifact.parent.mkdir()
    artifact.write_bytes(b"weights")
    digests = XattrDigests()

    digests.record(fs, str(artifact), DIGEST)
    sidecar = Path(integrity.sidecar_path(str(artifact)))
    assert sidecar.read_bytes() == DIGEST.header().encode()
    assert digests.lookup(fs, str(artifact), None) == DIGEST

    artifact.unlink()
    digests.remove(fs, str(artifact))
    assert not sidecar.exists()


def test_without_extended_attributes_a_runs_records_stay_inside_its_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store rooted at a run's ``…/artifacts`` is confined to it: the fallback sidecar is beside the
    file (inside the root), never in ``<run>/.artifact.digests`` (outside it), and is checked."""

    def unsupported(*args: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", unsupported)
    monkeypatch.setattr(os, "getxattr", unsupported)
    run = tmp_path / "mlruns" / "1" / ("0123456789abcdef" * 2)
    store = ArtifactStore(str(run / "artifacts"))
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    store.log_artifact(str(source), "d")

    assert (run / "artifacts" / "d" / ".artifact.digests" / "model.bin").exists()
    assert not (run / ".artifact.digests").exists()
    assert store.list_artifacts("d")[0].digest == str(integrity.file_digests(source).identity)
    (run / "artifacts" / "d" / "model.bin").write_bytes(b"Weights")  # changed behind its back
    with pytest.raises(OSError, match="recorded digest"):
        store.download_artifacts("d/model.bin", str(tmp_path))


def test_another_attribute_error_is_not_hidden(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "setxattr", denied)
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    with pytest.raises(PermissionError):
        XattrDigests().record(fs, str(artifact), DIGEST)
    assert not Path(integrity.sidecar_path(str(artifact))).exists()


def test_the_store_lists_local_digests_without_asking(tmp_path: Path) -> None:
    """A cheap lookup: every listing carries the digest; MLflow's own listing sees no extra file."""
    source = tmp_path / "source.txt"
    source.write_bytes(b"listed")
    store = ArtifactStore(str(tmp_path / "root"))
    store.log_artifact(source, "d")
    (info,) = store.list_artifacts("d")
    assert info.digest == integrity.file_digest(source).header()
    assert os.listdir(tmp_path / "root" / "d") == ["source.txt"]


def _small_files_and_a_large_one(tmp_path: Path, count: int) -> Path:
    """``tree/small-<n>.bin`` (16 KiB each) and ``tree/large.bin``, just over the inline hashing limit."""
    from artifact_fs import store as store_module

    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(count):
        (tree / f"small-{index}.bin").write_bytes(os.urandom(16 * 1024))
    (tree / "large.bin").write_bytes(os.urandom(store_module.INLINE_HASH_LIMIT + 1))
    return tree


def test_small_files_are_hashed_without_a_hand_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hand-off to the hashing pool costs more than hashing a small file (local trees of 16 KiB
    files were 4x slower with digests on); only a file over the limit is hashed beside its upload."""
    from artifact_fs import store as store_module

    handed_off: list[str] = []
    real_submit = store_module._HASHING.submit

    def submit(function: Any, source: str) -> Any:
        handed_off.append(os.path.basename(source))
        return real_submit(function, source)

    monkeypatch.setattr(store_module._HASHING, "submit", submit)
    tree = _small_files_and_a_large_one(tmp_path, 20)
    store = ArtifactStore(str(tmp_path / "root"))
    store.log_artifacts(str(tree))

    assert handed_off == ["large.bin"]
    for info in store.list_artifacts():  # and every one of them is recorded
        assert info.digest == str(integrity.file_digests(tree / info.path).identity)


def test_a_local_upload_appears_with_its_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file's record is set on its temporary file before the rename that makes it appear
    (``XattrDigests.kept_by_writes``): no reader ever sees it unrecorded, and nothing is recorded by
    path afterwards. A file over the inline limit is hashed beside its copy and recorded after it."""
    published: dict[str, bytes | None] = {}
    rename = local._rename_into_place

    def checked_rename(temporary: str, destination: str, **kwargs: Any) -> None:
        try:
            published[os.path.basename(destination)] = os.getxattr(temporary, ATTRIBUTE)
        except OSError:
            published[os.path.basename(destination)] = None
        rename(temporary, destination, **kwargs)

    by_path: list[str] = []
    setxattr = os.setxattr

    def counted_setxattr(target: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(target, int):
            by_path.append(os.path.basename(target))
        setxattr(target, *args, **kwargs)

    monkeypatch.setattr(local, "_rename_into_place", checked_rename)
    monkeypatch.setattr(os, "setxattr", counted_setxattr)
    tree = _small_files_and_a_large_one(tmp_path, 5)
    store = ArtifactStore(str(tmp_path / "root"))
    store.log_artifacts(str(tree))

    for index in range(5):
        expected = integrity.file_digests(tree / f"small-{index}.bin").header().encode()
        assert published[f"small-{index}.bin"] == expected
    assert published["large.bin"] is None
    assert by_path == ["large.bin"]
    for info in store.list_artifacts():
        assert info.digest == str(integrity.file_digests(tree / info.path).identity)


def test_pipe_file_keeps_the_record_it_is_given(fs: local.ArtifactLocalFileSystem, tmp_path: Path) -> None:
    target = tmp_path / "d" / "model.bin"
    fs.pipe_file(str(target), b"weights", digest=DIGEST)
    assert target.read_bytes() == b"weights"
    assert os.getxattr(target, ATTRIBUTE) == DIGEST.header().encode()
    with pytest.raises(FileExistsError):
        fs.pipe_file(str(target), b"other", mode="create", digest=DIGEST)
    assert target.read_bytes() == b"weights"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.bin"]  # no temporary left
    fs.pipe_file(str(target), b"replaced")  # no digest: a new file, no record
    with pytest.raises(OSError):
        os.getxattr(target, ATTRIBUTE)


def test_a_record_refused_on_the_open_file_is_kept_by_path(
    fs: local.ArtifactLocalFileSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the attribute cannot be set on the file being written (some FUSE mounts refuse it on a
    descriptor), the write still succeeds and the record is kept by path once the file is in place."""
    setxattr = os.setxattr

    def no_descriptors(target: Any, *args: Any) -> None:
        if isinstance(target, int):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        setxattr(target, *args)

    monkeypatch.setattr(os, "setxattr", no_descriptors)
    target = tmp_path / "model.bin"
    fs.pipe_file(str(target), b"weights", digest=DIGEST)
    assert os.getxattr(target, ATTRIBUTE) == DIGEST.header().encode()
