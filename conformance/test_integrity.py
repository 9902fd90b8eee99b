"""Integrity (issue #18): bytes changed in the store behind artifact_fs's back fail the next download.

Every artifact logged through :class:`~artifact_fs.store.ArtifactStore` gets a digest record (an
extended attribute on local files, a hidden ``.artifact.digests`` sidecar elsewhere, kept by the
server for proxied deployments). The bytes are then changed directly in the store - through the
backend's own filesystem or SDK, or in the destination behind a proxy, so no new digest is recorded -
and the next ``download_artifacts`` must raise an ``EIO`` naming the artifact, leaving no local file.

MLflow's own ``mlflow server`` keeps no digest and sends none, so a client behind it has nothing to
check against: those deployments are strict xfails for the checks (never silently skipped).
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pytest
import requests
from click.testing import CliRunner
from fsspec.implementations.local import LocalFileSystem

from artifact_fs import backends, integrity, uris
from artifact_fs.backends.local_digests import ATTRIBUTE
from artifact_fs.backends.object_store import record_path
from artifact_fs.backends.runs import RunsFileSystem
from artifact_fs.cli import main
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.store import ArtifactStore
from conformance.backends.mlflow_artifacts import BUCKET as MLFLOW_BUCKET
from conformance.harness import BackendUnderTest, Target
from conformance.helpers import counting_read_backs, random_bytes

SIZE = 4096
NO_RECORDS = (
    "MLflow's own server records no digest and sends no Repr-Digest, and artifact_fs's client keeps no "
    "record of its own behind a server (the server is where records live), so nothing can be checked"
)
UNRECORDED_DEPLOYMENTS = {"mlflow-server-s3": NO_RECORDS, "mlflow-server-local": NO_RECORDS}
DIRECT_BACKENDS = ("local", "s3", "azure", "gcs", "ftp", "sftp", "hdfs", "hdfs_kerberos")
"""Where the client's own ``ARTIFACT_FS_DIGESTS`` decides what is recorded (behind a server, the
server's setting does)."""


class Storage:
    """The storage behind artifact_fs, reached without it: ``name`` is relative to the test's root."""

    def __init__(
        self,
        read: Callable[[str], bytes],
        write: Callable[[str, bytes], None],
        record_exists: Callable[[str], bool],
    ) -> None:
        self.read = read
        self.write = write
        self.record_exists = record_exists

    def change(self, name: str) -> bytes:
        """Flip the first byte: same size, other content."""
        data = bytearray(self.read(name))
        data[0] ^= 0xFF
        self.write(name, bytes(data))
        return bytes(data)

    def truncate(self, name: str, size: int) -> None:
        self.write(name, self.read(name)[:size])


def local_store(directory: Path) -> Storage:
    """A local directory; changes are made in place (``r+b``), as a disk error or a stray tool would."""

    def write(name: str, data: bytes) -> None:
        path = directory / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        with open(path, "r+b") as file:  # the same inode: its digest attribute stays
            file.write(data)
            file.truncate()

    def record_exists(name: str) -> bool:
        path = directory / name
        sidecar = Path(integrity.sidecar_path(str(path)))
        if sidecar.exists():
            return True
        try:
            os.getxattr(path, ATTRIBUTE)
        except OSError:
            return False
        return True

    return Storage(lambda name: (directory / name).read_bytes(), write, record_exists)


def fsspec_store(target: Target) -> Storage:
    fs = target.fs
    backend = backends.load(uris.parse(target.url).backend)

    def record_exists(name: str) -> bool:
        fs.invalidate_cache()
        return bool(fs.exists(integrity.digest_store(backend).location(target.path(name))))

    return Storage(
        lambda name: bytes(fs.cat_file(target.path(name))),
        lambda name, data: fs.pipe_file(target.path(name), data),
        record_exists,
    )


def s3_store(client: Any, bucket: str, prefix: str) -> Storage:
    def record_exists(name: str) -> bool:
        key = record_path(f"{bucket}/{prefix}/{name}").split("/", 1)[1]  # the bucket's hidden tree
        return bool(client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))

    return Storage(
        lambda name: client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read(),
        lambda name, data: client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data),
        record_exists,
    )


def behind(target: Target) -> Storage:
    """The storage the test's artifacts live in, reached directly (behind the server when proxied)."""
    backend = target.backend
    spec_id = backend.spec.id
    fresh = target.url.rstrip("/").rsplit("/", 1)[1]
    details = backend.details
    if spec_id == "artifact-server-local":
        return local_store(Path(details["server"].destination) / details["prefix"] / fresh)
    if spec_id == "artifact-server-s3":
        return s3_store(details["s3"].client(), details["bucket"], f"{details['prefix']}/{fresh}")
    if spec_id == "mlflow-server-local":
        return local_store(Path(details["local_destination"]) / details["prefix"] / fresh)
    if spec_id == "mlflow-server-s3":
        return s3_store(details["seaweedfs"].client(), details["bucket"], f"{details['prefix']}/{fresh}")
    if isinstance(target.fs, LocalFileSystem):
        return local_store(Path(target.root))
    return fsspec_store(target)


def unrecorded(request: pytest.FixtureRequest, backend: BackendUnderTest) -> None:
    """Strict xfail where the deployment keeps no digests (the check must fail there, not pass)."""
    reason = UNRECORDED_DEPLOYMENTS.get(backend.spec.id)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def log(target: Target, tmp_path: Path, name: str, data: bytes, store: Any = None) -> Path:
    local = tmp_path / "upload" / name
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    directory = os.path.dirname(name) or None
    (store or target.store()).log_artifact(local, directory)
    return local


def destination(tmp_path: Path) -> Path:
    path = tmp_path / f"download-{len(list(tmp_path.glob('download-*')))}"
    path.mkdir()
    return path


def assert_mismatch(error: BaseException, name: str) -> None:
    """An ``EIO`` naming the artifact, caused by :class:`integrity.DigestMismatchError`."""
    assert isinstance(error, OSError)
    assert error.errno == errno.EIO, repr(error)
    assert name in str(error)
    cause = getattr(error, "failures", {}).get(name, error.__cause__)
    assert isinstance(cause, integrity.DigestMismatchError), repr(cause)
    assert cause.errno == errno.EIO
    assert name in str(cause)


def assert_changed_fails_and_intact_passes(store: Any, tmp_path: Path, *, intact_seed: int) -> None:
    """``d/changed.bin`` fails its download (no local file left); ``d/intact.bin`` still downloads."""
    local = destination(tmp_path)
    with pytest.raises(OSError) as raised:
        store.download_artifacts("d/changed.bin", str(local))
    assert_mismatch(raised.value, "d/changed.bin")
    assert not (local / "d" / "changed.bin").exists()
    intact = store.download_artifacts("d/intact.bin", str(destination(tmp_path)))
    assert Path(intact).read_bytes() == random_bytes(SIZE, seed=intact_seed)


def test_bytes_changed_in_the_store_fail_the_next_download(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    unrecorded(request, target.backend)
    data = random_bytes(SIZE, seed=18)
    log(target, tmp_path, "d/changed.bin", data)
    log(target, tmp_path, "d/intact.bin", random_bytes(SIZE, seed=19))
    behind(target).change("d/changed.bin")
    store = target.store()

    assert_changed_fails_and_intact_passes(store, tmp_path, intact_seed=19)


def test_a_truncated_artifact_fails_the_next_download(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    unrecorded(request, target.backend)
    log(target, tmp_path, "short.bin", random_bytes(SIZE, seed=20))
    behind(target).truncate("short.bin", SIZE // 3)

    local = destination(tmp_path)
    with pytest.raises(OSError) as raised:
        target.store().download_artifacts("short.bin", str(local))
    assert_mismatch(raised.value, "short.bin")
    assert not (local / "short.bin").exists()


def test_verify_names_the_changed_and_the_truncated_artifact(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``artifact-fs verify`` on every backend: exit 1, one DAMAGED line per file changed or cut
    behind artifact_fs's back, nothing said of the intact one."""
    unrecorded(request, target.backend)
    log(target, tmp_path, "v/changed.bin", random_bytes(SIZE, seed=23))
    log(target, tmp_path, "v/short.bin", random_bytes(SIZE, seed=24))
    log(target, tmp_path, "v/intact.bin", random_bytes(SIZE, seed=25))
    behind(target).change("v/changed.bin")
    behind(target).truncate("v/short.bin", SIZE // 2)

    options = [
        arg
        for key, value in target.backend.storage_options.items()
        for arg in ("-o", f"{key}={json.dumps(value)}")
    ]
    runner = CliRunner(env=target.backend.environ)
    result = runner.invoke(main, ["verify", target.url, "-q", *options], catch_exceptions=False)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = sorted(result.stdout.splitlines())
    assert [line.split(":")[0] for line in lines] == ["DAMAGED v/changed.bin", "DAMAGED v/short.bin"], lines


def test_a_whole_root_download_names_the_changed_artifact(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    unrecorded(request, target.backend)
    log(target, tmp_path, "a/changed.bin", random_bytes(SIZE, seed=21))
    log(target, tmp_path, "b/intact.bin", random_bytes(SIZE, seed=22))
    behind(target).change("a/changed.bin")

    local = destination(tmp_path)
    with pytest.raises(OSError) as raised:
        target.store().download_artifacts(dst_path=str(local))
    assert_mismatch(raised.value, "a/changed.bin")
    assert not (local / "a" / "changed.bin").exists()
    assert (local / "b" / "intact.bin").read_bytes() == random_bytes(SIZE, seed=22)


def test_listings_never_show_digest_records(target: Target, tmp_path: Path) -> None:
    log(target, tmp_path, "top.txt", b"top")
    log(target, tmp_path, "sub/inner.txt", b"inner")
    store = target.store()
    assert [info.path for info in store.list_artifacts()] == ["sub", "top.txt"]
    assert [info.path for info in store.list_artifacts("sub")] == ["sub/inner.txt"]
    local = destination(tmp_path)
    store.download_artifacts(dst_path=str(local))
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*")) == ["sub", "sub/inner.txt", "top.txt"]


def test_the_record_directory_is_no_artifact_even_by_name(target: Target, tmp_path: Path) -> None:
    """Asked for by name, ``.artifact.digests`` is refused (or missing): never listed, read or deleted."""
    log(target, tmp_path, "top.txt", b"top")
    store = target.store()
    for operation in (
        lambda: store.list_artifacts(DIGEST_DIRECTORY),
        lambda: store.list_artifacts(f"{DIGEST_DIRECTORY}/top.txt"),
        lambda: store.download_artifacts(f"{DIGEST_DIRECTORY}/top.txt", str(destination(tmp_path))),
        lambda: store.delete_artifacts(DIGEST_DIRECTORY),
    ):
        try:
            result = operation()
        except (ValueError, FileNotFoundError):  # a reserved name (InvalidArtifactPathError), or none
            continue
        assert result in ([], None), result
    if target.backend.spec.id not in UNRECORDED_DEPLOYMENTS:
        assert behind(target).record_exists("top.txt")  # the delete by name did not take the records


def test_a_listing_with_digests_carries_the_recorded_digest(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    unrecorded(request, target.backend)
    local = log(target, tmp_path, "digested.bin", random_bytes(SIZE, seed=23))
    (info,) = target.store().list_artifacts(digests=True)
    assert info.digest == integrity.file_digest(local).header()


def test_deleting_a_file_removes_its_record(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No record outlives its file: a file written later under the same name (by MLflow, say) reads fine."""
    store_behind = behind(target)
    log(target, tmp_path, "d/gone.bin", random_bytes(SIZE, seed=24))
    log(target, tmp_path, "d/kept.bin", random_bytes(SIZE, seed=25))
    store = target.store()
    store.delete_artifacts("d/gone.bin")

    later = random_bytes(SIZE, seed=26)
    store_behind.write("d/gone.bin", later)
    downloaded = store.download_artifacts("d/gone.bin", str(destination(tmp_path)))
    assert Path(downloaded).read_bytes() == later
    if target.backend.spec.id not in UNRECORDED_DEPLOYMENTS:
        assert not store_behind.record_exists("d/gone.bin")
        assert store_behind.record_exists("d/kept.bin")


def test_a_folder_emptied_by_a_delete_is_not_kept_alive_by_records(target: Target, tmp_path: Path) -> None:
    """On object stores a folder is its keys: once its only file is deleted, its record goes too."""
    log(target, tmp_path, "solo/only.bin", random_bytes(SIZE, seed=31))
    log(target, tmp_path, "top.txt", b"top")
    store = target.store()
    store.delete_artifacts("solo/only.bin")
    kept = ["solo", "top.txt"] if target.backend.capabilities.empty_directories else ["top.txt"]
    assert [info.path for info in store.list_artifacts()] == kept
    assert store.list_artifacts("solo") == []


def test_deleting_a_directory_takes_its_records_along(target: Target, tmp_path: Path) -> None:
    store_behind = behind(target)
    log(target, tmp_path, "tree/sub/a.bin", random_bytes(SIZE, seed=27))
    store = target.store()
    store.delete_artifacts("tree")
    assert not store_behind.record_exists("tree/sub/a.bin")
    assert store.list_artifacts() == []


def only_direct_backends(function: Any) -> Any:
    """Run on the :data:`DIRECT_BACKENDS` (the suite's ``only_backends`` marker, once per name)."""
    for mark in DIRECT_BACKENDS:
        function = pytest.mark.only_backends(mark)(function)
    return function


@only_direct_backends
def test_digests_off_records_and_checks_nothing(target: Target, tmp_path: Path) -> None:
    """``ARTIFACT_FS_DIGESTS=false``: no record written, a changed file downloads as it now is.

    Direct backends only: behind ``artifact-fs serve`` the server's own setting decides what it
    records and whether it serves a body that does not match.
    """
    store_behind = behind(target)
    off = target.store(environ={**os.environ, "ARTIFACT_FS_DIGESTS": "false"})
    log(target, tmp_path, "off.bin", random_bytes(SIZE, seed=28), store=off)
    assert not store_behind.record_exists("off.bin")
    log(target, tmp_path, "on.bin", random_bytes(SIZE, seed=29))
    assert store_behind.record_exists("on.bin")

    changed_off = store_behind.change("off.bin")
    changed_on = store_behind.change("on.bin")
    local = destination(tmp_path)
    assert Path(off.download_artifacts("off.bin", str(local))).read_bytes() == changed_off
    assert Path(off.download_artifacts("on.bin", str(local))).read_bytes() == changed_on
    assert all(info.digest is None for info in off.list_artifacts(digests=True))


@pytest.mark.only_backends("local")
def test_a_local_file_replaced_by_rename_is_read_unchecked(target: Target, tmp_path: Path) -> None:
    """The record is the file's own attribute: a file renamed over it (MLflow's own writes) has none.

    So an artifact MLflow rewrites later is read as it now is, never refused against a stale digest;
    ``artifact-fs verify`` reports it as a file without a digest.
    """
    log(target, tmp_path, "model.bin", random_bytes(SIZE, seed=30))
    artifact = Path(target.root) / "model.bin"
    replacement = artifact.with_name("replacement")
    replacement.write_bytes(b"rewritten by someone else")
    os.replace(replacement, artifact)
    store = target.store()
    assert store.list_artifacts(digests=True)[0].digest is None
    downloaded = store.download_artifacts("model.bin", str(destination(tmp_path)))
    assert Path(downloaded).read_bytes() == b"rewritten by someone else"


@pytest.mark.mlflow_artifacts
@pytest.mark.mlflow
@pytest.mark.parametrize("location", ["local", "s3"])
def test_a_runs_uri_checks_the_digests_of_the_runs_own_store(
    location: str,
    mlflow_servers: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``runs:/<id>`` records and checks where the run's artifacts live (a local directory, S3).

    (A run in the server's proxied default store is behind ``mlflow server``, which keeps no digests.)
    """
    seaweedfs = mlflow_servers["seaweedfs"]
    tracking = mlflow_servers["local"].url
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    for name, value in seaweedfs.environ().items():
        monkeypatch.setenv(name, value)
    RunsFileSystem.clear_instance_cache()
    artifact_location = {
        "local": (tmp_path / "experiment").as_uri(),
        "s3": f"s3://{MLFLOW_BUCKET}/integrity-{uuid.uuid4().hex[:12]}",
    }[location]
    experiment = _tracking_post(
        tracking,
        "experiments/create",
        {"name": f"integrity-{uuid.uuid4().hex}", "artifact_location": artifact_location},
    )
    run = _tracking_post(tracking, "runs/create", {"experiment_id": experiment["experiment_id"]})["run"][
        "info"
    ]
    artifact_uri: str = run["artifact_uri"]
    if location == "local":
        stored = local_store(Path(urlsplit(artifact_uri).path))
    else:
        bucket, _, key = artifact_uri.removeprefix("s3://").partition("/")
        stored = s3_store(seaweedfs.client(), bucket, key)

    store = ArtifactStore(f"runs:/{run['run_id']}")
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "changed.bin").write_bytes(random_bytes(SIZE, seed=40))
    (upload / "intact.bin").write_bytes(random_bytes(SIZE, seed=41))
    store.log_artifacts(upload, "d")
    assert stored.record_exists("d/changed.bin")
    stored.change("d/changed.bin")

    assert_changed_fails_and_intact_passes(store, tmp_path, intact_seed=41)

    # fsspec's own get on runs:/// (what pandas, dask or a user's fs.get does) checks the same way
    fs = fsspec.filesystem("runs")
    local = tmp_path / "fsspec-get.bin"
    with pytest.raises(integrity.DigestMismatchError):
        fs.get_file(f"runs:///{run['run_id']}/d/changed.bin", str(local))
    assert not local.exists()
    fs.get_file(f"runs:///{run['run_id']}/d/intact.bin", str(local))
    assert local.read_bytes() == random_bytes(SIZE, seed=41)


def _tracking_post(tracking: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{tracking}/api/2.0/mlflow/{endpoint}", json=body, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.s3
def test_a_download_in_concurrent_ranges_is_checked_whole(seaweedfs_server: Any, tmp_path: Path) -> None:
    """A download made of concurrent ranged GETs is checked as one file: a byte changed in a middle
    range fails it, the intact file passes."""
    from conformance.backends.s3 import BUCKET

    part = 256 * 1024
    environ = {**os.environ, "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(part)}
    options = {
        "endpoint_url": seaweedfs_server.endpoint_url,
        "key": seaweedfs_server.access_key,
        "secret": seaweedfs_server.secret_key,
        "skip_instance_cache": True,
    }
    prefix = f"integrity-ranges/{uuid.uuid4().hex[:12]}"
    store = ArtifactStore(f"s3://{BUCKET}/{prefix}", environ=environ, **options)
    data = random_bytes(5 * part + 1234, seed=21)
    log(None, tmp_path, "big.bin", data, store=store)  # type: ignore[arg-type]
    intact = store.download_artifacts("big.bin", str(destination(tmp_path)))
    assert Path(intact).read_bytes() == data

    changed = bytearray(data)
    changed[3 * part + 7] ^= 0xFF
    seaweedfs_server.client().put_object(Bucket=BUCKET, Key=f"{prefix}/big.bin", Body=bytes(changed))
    local = destination(tmp_path)
    with pytest.raises(OSError) as raised:
        store.download_artifacts("big.bin", str(local))
    assert_mismatch(raised.value, "big.bin")
    assert not (local / "big.bin").exists()


@pytest.mark.only_backends("s3")
@pytest.mark.only_backends("gcs")
def test_a_checked_download_hashes_what_it_received_and_reads_nothing_back(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 and GCS downloads hash each range's pieces as they arrive (combined in file order), so the
    check against the record reads no downloaded file back: a small file and one of six concurrent
    ranges. A byte changed in a middle range still fails the download and leaves no file."""
    part = 256 * 1024
    environ = {**os.environ, **target.backend.environ, "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(part)}
    store = target.store(environ=environ)
    large = random_bytes(5 * part + 1234, seed=42)
    log(target, tmp_path, "large.bin", large, store=store)
    log(target, tmp_path, "small.bin", random_bytes(SIZE, seed=43), store=store)
    read_back = counting_read_backs(monkeypatch)

    local = store.download_artifacts(dst_path=str(destination(tmp_path)))
    assert (Path(local) / "large.bin").read_bytes() == large
    assert (Path(local) / "small.bin").read_bytes() == random_bytes(SIZE, seed=43)
    assert read_back == []

    changed = bytearray(large)
    changed[3 * part + 7] ^= 0xFF
    behind(target).write("large.bin", bytes(changed))
    local = destination(tmp_path)
    with pytest.raises(OSError) as raised:
        store.download_artifacts("large.bin", str(local))
    assert_mismatch(raised.value, "large.bin")
    assert not (local / "large.bin").exists()
    assert read_back == []
