"""``artifact-fs gc`` against a real ``mlflow server`` (SQLite backend store), beside ``mlflow gc``.

Runs are created and deleted with MLflow's own client (in its virtual environment); roots live on a
local directory, behind the server's ``--serve-artifacts`` (local destination), on S3 (SeaweedFS) and
on FTP. One module-scoped server keeps the added time small.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import artifact_fs
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.store import ArtifactStore
from conformance.harness import BackendUnderTest
from conformance.servers.artifact_server import start_artifact_server
from conformance.servers.mlflow_env import mlflow_bin, run_mlflow_python
from conformance.servers.mlflow_server import MlflowServer, start_mlflow_server

pytestmark = [pytest.mark.mlflow, pytest.mark.gc]

LOG_RUNS = r"""
import json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient
spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else json.loads(os.environ["GC_SPEC"])
client = MlflowClient()
name = spec["experiment"]
experiment = client.get_experiment_by_name(name)
if experiment is None:
    experiment_id = client.create_experiment(name, spec.get("location"))
else:
    experiment_id = experiment.experiment_id
out = {"experiment_id": experiment_id, "runs": {}, "models": {}}
source = tempfile.mkdtemp()
os.makedirs(os.path.join(source, "nested", "deeper"))
for index in range(spec["runs"]):
    for relative in ("a.txt", "nested/b.bin", "nested/deeper/c.json"):
        with open(os.path.join(source, relative), "wb") as f:
            f.write(f"{name}-{index}-{relative}".encode() * (index + 1))
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "p", index)
    client.log_metric(run.info.run_id, "m", float(index))
    if spec.get("artifacts", True):
        client.log_artifacts(run.info.run_id, source)
    client.set_terminated(run.info.run_id)
    delete = index < spec["deleted"]
    if delete:
        client.delete_run(run.info.run_id)
    out["runs"][run.info.run_id] = {"uri": run.info.artifact_uri, "deleted": delete}
for index in range(spec.get("models", 0)):
    model = client.create_logged_model(experiment_id, name=f"model-{index}")
    if spec.get("artifacts", True):
        client.log_model_artifacts(model.model_id, source)
    client.delete_logged_model(model.model_id)
    out["models"][model.model_id] = {"uri": model.artifact_location, "deleted": True}
print(json.dumps(out))
"""


ALLOW_HOSTS = {"MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES": "ftp,sftp,http,abfss"}
"""Experiments here live on other hosts than the server's destination (MLflow refuses that by default)."""


def log_runs(server: MlflowServer, env: dict[str, str], **spec: Any) -> dict[str, Any]:
    done = run_mlflow_python(
        LOG_RUNS, env={**env, "MLFLOW_TRACKING_URI": server.url, "GC_SPEC": json.dumps(spec)}
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def artifact_fs_gc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artifact_fs.cli", "gc", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def mlflow_gc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mlflow_bin(), "gc", *args],
        env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_rows(database: Path, run_ids: list[str]) -> set[str]:
    with sqlite3.connect(database) as db:
        marks = ",".join("?" * len(run_ids))
        found = {
            row[0] for row in db.execute(f"SELECT run_uuid FROM runs WHERE run_uuid IN ({marks})", run_ids)
        }
        found |= {
            row[0] for row in db.execute(f"SELECT run_uuid FROM params WHERE run_uuid IN ({marks})", run_ids)
        }
    return found


def record_source(directory: Path) -> Path:
    source = directory / "recorded.txt"
    source.write_bytes(b"logged by artifact_fs, with a digest record")
    return source


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def gc_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    work = tmp_path_factory.mktemp("gc-mlflow")
    server = start_mlflow_server(
        server_log_dir, work, str(work / "mlartifacts"), env=ALLOW_HOSTS, name="mlflow-gc"
    )
    try:
        yield server
    finally:
        server.stop()


def database_of(server: MlflowServer) -> Path:
    assert server.process.cwd is not None
    return server.process.cwd / "mlflow.db"  # start_mlflow_server's store, in its working directory


@pytest.mark.local
def test_gc_collects_local_and_proxied_roots_and_leaves_live_ones(
    gc_server: MlflowServer, tmp_path: Path
) -> None:
    destination = Path(gc_server.artifacts_destination)
    direct = tmp_path / "direct"
    local = log_runs(gc_server, {}, experiment="gc-local", location=direct.as_uri(), runs=2, deleted=1)
    proxied = log_runs(gc_server, {}, experiment="gc-proxied", runs=2, deleted=1, models=1)
    database = database_of(gc_server)
    deleted = [r for spec in (local, proxied) for r, v in spec["runs"].items() if v["deleted"]]
    live = [r for spec in (local, proxied) for r, v in spec["runs"].items() if not v["deleted"]]
    before_direct, before_proxied = snapshot(direct), snapshot(destination)
    store = ["--backend-store-uri", f"sqlite:///{database}", "--artifacts-destination", str(destination)]
    ids = ["--run-ids", ",".join(deleted), "--logged-model-ids", ",".join(proxied["models"])]

    dry = artifact_fs_gc(*store, *ids, "--dry-run")
    assert dry.returncode == 0, dry.stderr + dry.stdout
    assert "would delete 3 objects" in dry.stdout, dry.stdout
    assert snapshot(direct) == before_direct and snapshot(destination) == before_proxied
    assert run_rows(database, deleted) == set(deleted)

    report = tmp_path / "report.jsonl"
    done = artifact_fs_gc(*store, *ids, "--report", str(report))
    assert done.returncode == 0, done.stderr + done.stdout
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    collected = {line["id"] for line in lines if line["status"] == "deleted" and line["kind"] != "experiment"}
    assert collected == {*deleted, *proxied["models"]}
    assert all(line["objects"] == 3 for line in lines if line["kind"] in {"run", "logged_model"})
    assert run_rows(database, deleted) == set()
    assert run_rows(database, live) == set(live)
    for run_id in deleted:  # nothing left, not even <experiment>/<run_id>/
        assert not list(direct.rglob(run_id)) and not list(destination.rglob(run_id))
    for model_id in proxied["models"]:
        assert not list(destination.rglob(model_id))
    assert snapshot(direct) == {k: v for k, v in before_direct.items() if not k.startswith(tuple(deleted))}
    live_proxied = {
        k: v for k, v in before_proxied.items() if not any(d in k for d in [*deleted, *proxied["models"]])
    }
    assert snapshot(destination) == live_proxied

    again = artifact_fs_gc(*store, *ids)
    assert again.returncode == 1  # the named ids no longer exist: refused, nothing deleted
    assert "no such id" in again.stdout
    assert snapshot(destination) == live_proxied
    assert artifact_fs_gc(*store).returncode == 0


@pytest.mark.local
def test_gc_refuses_a_live_run_and_keeps_a_root_a_model_version_points_into(
    gc_server: MlflowServer, tmp_path: Path
) -> None:
    spec = log_runs(
        gc_server, {}, experiment="gc-protected", location=(tmp_path / "p").as_uri(), runs=2, deleted=1
    )
    deleted = next(r for r, v in spec["runs"].items() if v["deleted"])
    live = next(r for r, v in spec["runs"].items() if not v["deleted"])
    run_mlflow_python(
        "from mlflow import MlflowClient; c = MlflowClient(); c.create_registered_model('gc-kept');"
        f"c.create_model_version('gc-kept', 'runs:/{deleted}/nested', run_id='{deleted}')",
        env={"MLFLOW_TRACKING_URI": gc_server.url},
    )
    database = database_of(gc_server)
    done = artifact_fs_gc("--backend-store-uri", f"sqlite:///{database}", "--run-ids", f"{deleted},{live}")
    assert done.returncode == 1
    assert f"run {live}: refused" in done.stdout and f"run {deleted}: kept" in done.stdout, done.stdout
    assert run_rows(database, [deleted, live]) == {deleted, live}
    assert (tmp_path / "p" / deleted / "artifacts" / "a.txt").exists()


@pytest.mark.local
def test_gc_orphans_removes_an_old_orphan_and_keeps_a_fresh_one(
    gc_server: MlflowServer, tmp_path: Path
) -> None:
    location = tmp_path / "orphans"
    log_runs(gc_server, {}, experiment="gc-orphans", location=location.as_uri(), runs=1, deleted=0)
    old, fresh = location / ("a" * 32), location / ("b" * 32)
    for orphan in (old, fresh):
        (orphan / "artifacts" / "sub").mkdir(parents=True)
        (orphan / "artifacts" / "sub" / "f.txt").write_text("orphan")
    os.utime(old / "artifacts" / "sub" / "f.txt", (1_000_000_000, 1_000_000_000))
    database, destination = database_of(gc_server), gc_server.artifacts_destination
    store = ["--backend-store-uri", f"sqlite:///{database}", "--artifacts-destination", destination]
    listed = artifact_fs_gc(*store, "--orphans")
    assert listed.returncode == 0, listed.stderr
    assert f"orphan {'a' * 32}: would delete" in listed.stdout and "written within the grace" in listed.stdout
    assert old.exists()
    done = artifact_fs_gc(*store, "--orphans", "--yes")
    assert done.returncode == 0, done.stderr
    assert not old.exists() and (fresh / "artifacts" / "sub" / "f.txt").exists()
    assert len(list(location.iterdir())) == 2  # the live run and the fresh orphan


@pytest.mark.local
def test_gc_uploads_removes_an_abandoned_temporary_file(gc_server: MlflowServer, tmp_path: Path) -> None:
    location = tmp_path / "uploads"
    spec = log_runs(gc_server, {}, experiment="gc-uploads", location=location.as_uri(), runs=1, deleted=0)
    run_dir = location / next(iter(spec["runs"])) / "artifacts"
    abandoned, in_flight = run_dir / ".artifact.uploading.dead", run_dir / ".artifact.uploading.live"
    abandoned.write_bytes(b"x" * 10)
    in_flight.write_bytes(b"y")
    os.utime(abandoned, (1_000_000_000, 1_000_000_000))
    done = artifact_fs_gc(
        "--backend-store-uri",
        f"sqlite:///{database_of(gc_server)}",
        "--artifacts-destination",
        gc_server.artifacts_destination,
        "--uploads",
        "--older-than",
        "1h",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert not abandoned.exists() and in_flight.exists() and (run_dir / "a.txt").exists()


@pytest.mark.s3
@pytest.mark.ftp
def test_gc_finishes_where_mlflow_gc_fails_on_s3_and_ftp(
    gc_server: MlflowServer,
    backend_s3_seaweedfs: BackendUnderTest,
    backend_ftp: BackendUnderTest,
    tmp_path: Path,
) -> None:
    s3_env = backend_s3_seaweedfs.environ
    ftp_root = backend_ftp.details["url_with_password"] + "/gc"
    s3 = log_runs(
        gc_server,
        s3_env,
        experiment="gc-s3",
        location=backend_s3_seaweedfs.root_url + "/gc",
        runs=2,
        deleted=1,
    )
    ftp = log_runs(gc_server, s3_env, experiment="gc-ftp", location=ftp_root, runs=1, deleted=1)
    database = database_of(gc_server)
    ftp_run = next(iter(ftp["runs"]))
    env = {**s3_env, **backend_ftp.environ}
    store = ["--backend-store-uri", f"sqlite:///{database}"]

    failed = mlflow_gc(*store, "--run-ids", ftp_run, "--tracking-uri", gc_server.url, env=env)
    assert failed.returncode != 0 and "Not implemented" in failed.stderr, failed.stderr[-2000:]

    # A killed writer's multipart upload under the experiment's location.
    client = backend_s3_seaweedfs.details["client"]()
    bucket = backend_s3_seaweedfs.details["bucket"]
    key = "suite/gc/" + next(iter(s3["runs"])) + "/artifacts/big.bin"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"p" * 1024)

    deleted = [r for spec in (s3, ftp) for r, v in spec["runs"].items() if v["deleted"]]
    # Artifacts artifact_fs logs carry digest records kept apart from the run's root (issue #18):
    # on FTP in the run's directory, on S3 in the bucket's hidden tree. gc removes them with the run.
    for spec, options in ((s3, backend_s3_seaweedfs.storage_options), (ftp, backend_ftp.storage_options)):
        uri = next(v["uri"] for v in spec["runs"].values() if v["deleted"])
        ArtifactStore(uri, **options).log_artifact(str(record_source(tmp_path)), "recorded")
    ftp_fs, ftp_run_root = artifact_fs.url_to_fs(ftp["runs"][ftp_run]["uri"], **backend_ftp.storage_options)
    ftp_run_directory = ftp_run_root.rstrip("/").rsplit("/", 1)[0]
    assert ftp_fs.exists(f"{ftp_run_directory}/{DIGEST_DIRECTORY}/artifacts/recorded/recorded.txt")
    assert client.list_objects_v2(Bucket=bucket, Prefix=f"{DIGEST_DIRECTORY}/suite/gc/")["KeyCount"] == 1

    done = artifact_fs_gc(*store, "--run-ids", ",".join(deleted), env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert run_rows(database, deleted) == set()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="suite/gc/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert not [k for k in keys if any(d in k for d in deleted)] and len(keys) == 3
    assert client.list_objects_v2(Bucket=bucket, Prefix=f"{DIGEST_DIRECTORY}/suite/gc/")["KeyCount"] == 0
    ftp_fs.invalidate_cache()
    assert not ftp_fs.exists(ftp_run_directory)  # records and all: nothing of the run is left

    only = ["--experiment-ids", s3["experiment_id"]]
    uploads = artifact_fs_gc(*store, *only, "--uploads", "--older-than", "0s", env=env)
    assert uploads.returncode == 0, uploads.stderr + uploads.stdout
    remaining = client.list_multipart_uploads(Bucket=bucket, Prefix="suite/gc/").get("Uploads", [])
    assert upload not in [u["UploadId"] for u in remaining]


@pytest.mark.server
def test_gc_collects_roots_behind_artifact_fs_serve(
    gc_server: MlflowServer, server_log_dir: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "served"
    destination.mkdir()
    served = start_artifact_server(server_log_dir, str(destination), name="artifact-server-gc")
    try:
        location = served.artifacts_url + "/gc-serve"
        spec = log_runs(gc_server, {}, experiment="gc-serve", location=location, runs=2, deleted=1, models=1)
        database = database_of(gc_server)
        deleted = [r for r, v in spec["runs"].items() if v["deleted"]]
        live = [r for r, v in spec["runs"].items() if not v["deleted"]]
        gone = [*deleted, *spec["models"]]
        before = snapshot(destination)
        assert any(deleted[0] in path for path in before)
        store = ["--backend-store-uri", f"sqlite:///{database}"]
        ids = ["--run-ids", ",".join(deleted), "--logged-model-ids", ",".join(spec["models"])]

        done = artifact_fs_gc(*store, *ids)
        assert done.returncode == 0, done.stderr + done.stdout
        assert run_rows(database, deleted) == set() and run_rows(database, live) == set(live)
        for resource_id in gone:  # through the server, and nothing left: not even <id>/
            assert not list(destination.rglob(resource_id)), resource_id
        assert snapshot(destination) == {k: v for k, v in before.items() if not any(g in k for g in gone)}
        again = artifact_fs_gc(*store)
        assert again.returncode == 0 and snapshot(destination) == {
            k: v for k, v in before.items() if not any(g in k for g in gone)
        }
    finally:
        served.stop()


def _plant(path: Path, data: bytes, *, old: bool, owner: Path | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        os.utime(path, (1_000_000_000, 1_000_000_000))
    if owner is not None:  # the SFTP user must be able to delete what root planted
        stat = owner.stat()
        for item in (path, *[p for p in path.parents if owner in p.parents]):
            os.chown(item, stat.st_uid, stat.st_gid)


@pytest.mark.ftp
@pytest.mark.sftp
@pytest.mark.gcs
def test_gc_uploads_removes_old_temporaries_on_ftp_sftp_and_gcs_parts(
    gc_server: MlflowServer,
    backend_ftp: BackendUnderTest,
    backend_sftp: BackendUnderTest,
    backend_gcs: BackendUnderTest,
) -> None:
    import gcsfs

    run_dir = "c" * 32 + "/artifacts"
    ftp_home = Path(backend_ftp.details["server"].home) / "suite" / "gc-uploads"
    sftp_server = backend_sftp.details["server"]
    sftp_home = Path(sftp_server.root) / "suite" / "gc-uploads"
    bucket = backend_gcs.details["bucket"]
    locations = {
        "ftp": backend_ftp.details["url_with_password"] + "/gc-uploads",
        "sftp": backend_sftp.root_url + "/gc-uploads",
        "gcs": f"gs://{bucket}/gc-uploads",
    }
    experiments = [
        log_runs(gc_server, {}, experiment=f"gc-uploads-{name}", location=location, runs=0, deleted=0)[
            "experiment_id"
        ]
        for name, location in locations.items()
    ]
    for home, owner in ((ftp_home, None), (sftp_home, Path(sftp_server.root))):
        _plant(home / run_dir / ".artifact.uploading.dead", b"x" * 10, old=True, owner=owner)
        _plant(home / run_dir / ".artifact.uploading.live", b"y", old=False, owner=owner)
        _plant(home / run_dir / "kept.txt", b"kept", old=True, owner=owner)
    gcs = gcsfs.GCSFileSystem(endpoint_url=backend_gcs.details["endpoint"], token="anon")
    part = f"{bucket}/gc-uploads/{run_dir}/model/.artifact.uploading.upload1.1"
    gcs.pipe({part: b"p" * 100, f"{bucket}/gc-uploads/{run_dir}/model/kept.bin": b"k"})
    env = {**backend_ftp.environ, **backend_sftp.environ, **backend_gcs.environ}
    store = [
        "--backend-store-uri",
        f"sqlite:///{database_of(gc_server)}",
        "--experiment-ids",
        ",".join(experiments),
    ]

    young = artifact_fs_gc(*store, "--uploads", "--older-than", "1h", env=env)
    assert young.returncode == 0, young.stderr + young.stdout
    gcs.invalidate_cache()
    assert gcs.exists(part)  # written just now: an upload in flight
    for home in (ftp_home, sftp_home):
        assert not (home / run_dir / ".artifact.uploading.dead").exists(), home
        assert (home / run_dir / ".artifact.uploading.live").exists() and (
            home / run_dir / "kept.txt"
        ).exists()

    done = artifact_fs_gc(*store, "--uploads", "--older-than", "0s", "--report", "/dev/stdout", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    gcs.invalidate_cache()
    assert not gcs.exists(part) and gcs.exists(f"{bucket}/gc-uploads/{run_dir}/model/kept.bin")
    for home in (ftp_home, sftp_home):
        assert (
            not (home / run_dir / ".artifact.uploading.live").exists()
            and (home / run_dir / "kept.txt").exists()
        )
