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
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(20):
        (tree / f"small-{index}.bin").write_bytes(os.urandom(16 * 1024))
    (tree / "large.bin").write_bytes(os.urandom(store_module.INLINE_HASH_LIMIT + 1))
    store = ArtifactStore(str(tmp_path / "root"))
    store.log_artifacts(str(tree))

    assert handed_off == ["large.bin"]
    for info in store.list_artifacts():  # and every one of them is recorded
        assert info.digest == str(integrity.file_digests(tree / info.path).identity)
