"""ArtifactStore on ``s3://`` (a real SeaweedFS) against raw boto3 and MLflow's S3ArtifactRepository.

The session starts its own SeaweedFS (auth enforced) with the conformance launcher. Scenarios, on the
shared data of ``conftest.py``: 200 x 64 KiB files (log_artifacts / download_artifacts of a tree)
and one 64 MiB file (log_artifact, a multipart upload; download of the root). Peers run on the same
server with the same data in the same session (``s3_peers.py``): boto3's ``upload_file`` /
``download_file`` with its defaults (a simple loop for the tree), one boto3 round before each of our
rounds (interleaved, so a busy machine's load changes stay out of the ratio), and MLflow's own
repository in its virtual environment (one subprocess, its rounds in a block before ours). Each
artifact_fs benchmark stores the peers' medians and ``ratio_vs_boto3`` / ``ratio_vs_mlflow`` (our
median divided by theirs; below 1 is faster) in ``extra_info``.

A third benchmark reads one column of an 8-column Parquet object with ``pd.read_parquet`` through
artifact_fs's filesystem (ranged reads) against a full boto3 download and a local read, and reports
the bytes each fetched from the server.

Every implementation constructs its repository (or store) inside the timing, as a user would; the
boto3 client is made once (MLflow caches its client too). Each timing has one warm-up round.
"""

from __future__ import annotations

import io
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.asyn import sync
from mlflow_peers import mlflow_repository_timings
from s3_peers import (
    BUCKET,
    PeerRounds,
    boto3_client,
    boto3_download,
    boto3_upload,
    delete_prefix,
    list_sizes,
)

import artifact_fs
from artifact_fs.store import ArtifactStore
from conformance.servers.seaweedfs import SeaweedFS, start_seaweedfs

pytestmark = [pytest.mark.benchmark(group="store-s3"), pytest.mark.timeout(900)]
SCENARIOS = ["small-upload", "small-download", "large-upload", "large-download"]
S3_ROUNDS = 7
WARMUP_ROUNDS = 1
PARQUET_KEY = "parquet/wide.parquet"
PARQUET_COLUMNS = 8
PARQUET_ROWS = 1_000_000
"""8 float64 columns of 1M rows, uncompressed: a 61 MiB object, 7.6 MiB per column."""


class FreshDirs:
    """Fresh local directories under ``base``, each removed when the next one is made."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.current: Path | None = None

    def fresh(self) -> Path:
        self.clear()
        self.current = Path(tempfile.mkdtemp(dir=self.base))
        return self.current

    def clear(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


class Prefixes:
    """Fresh upload prefixes ``upload/<who>/<n>``; the previous one is deleted when the next is made."""

    def __init__(self, client: Any, who: str) -> None:
        self.client = client
        self.who = who
        self.counter = itertools.count()
        self.current: str | None = None

    def fresh(self) -> str:
        self.clear()
        self.current = f"upload/{self.who}/{next(self.counter)}"
        return self.current

    def clear(self) -> None:
        if self.current is not None:
            delete_prefix(self.client, self.current)
            self.current = None


# -- the server and the data on it ------------------------------------------------------------------
@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(tmp_path_factory.mktemp("server-logs"), tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class S3Bench:
    """The running server, a boto3 client with its defaults, and the datasets already logged on it."""

    server: SeaweedFS
    client: Any
    logged: dict[str, str]
    """Dataset name -> key prefix (``logged/small/part-0/...``, ``logged/large/large.bin``)."""

    @property
    def store_options(self) -> dict[str, Any]:
        """artifact_fs's storage options for the server (everything else: its defaults)."""
        return {
            "endpoint_url": self.server.endpoint_url,
            "key": self.server.access_key,
            "secret": self.server.secret_key,
            "region_name": self.server.region,
        }

    def store(self, prefix: str) -> ArtifactStore:
        return ArtifactStore(f"s3://{BUCKET}/{prefix}", environ=self.server.environ(), **self.store_options)


@pytest.fixture(scope="session")
def s3(seaweedfs: SeaweedFS, small: Any, large: Any) -> S3Bench:
    server = seaweedfs
    client = boto3_client(server.endpoint_url, server.access_key, server.secret_key, server.region)
    logged = {}
    for dataset in (small, large):
        logged[dataset.name] = f"logged/{dataset.name}"
        boto3_upload(client, dataset.source, logged[dataset.name])
    return S3Bench(server, client, logged)


def _expected_sizes(source: Path) -> dict[str, int]:
    if source.is_file():
        return {source.name: source.stat().st_size}
    return {p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()}


def _local_sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


# -- MLflow: timed once per session, before the artifact_fs benchmarks read it ---------------------
@pytest.fixture(scope="session")
def mlflow_s3(s3: S3Bench, small: Any, large: Any, workdir: Path) -> dict[str, float]:
    """Median seconds of MLflow's S3ArtifactRepository, timed in-process in MLflow's venv."""
    datasets = {
        d.name: {
            "source": str(d.source),
            "logged": s3.logged[d.name],
            "files": len(_expected_sizes(d.source)),
        }
        for d in (small, large)
    }
    scratch = workdir / "mlflow-s3-scratch"
    return mlflow_repository_timings(
        "mlflow.store.artifact.s3_artifact_repo:S3ArtifactRepository",
        f"s3://{BUCKET}",
        s3.server.environ(),
        datasets,
        scratch=scratch,
        rounds=S3_ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )


# -- artifact_fs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_artifact_fs_s3(
    benchmark: Any,
    request: pytest.FixtureRequest,
    s3: S3Bench,
    workdir: Path,
    scenario: str,
) -> None:
    mlflow_s3: dict[str, float] = request.getfixturevalue("mlflow_s3")
    dataset_name, operation = scenario.split("-")
    source: Path = request.getfixturevalue(dataset_name).source
    logged = s3.logged[dataset_name]
    s3_client, store = s3.client, s3.store
    boto3_rounds = PeerRounds(WARMUP_ROUNDS)

    if operation == "upload":
        ours_remote, boto3_remote = Prefixes(s3_client, "artifact_fs"), Prefixes(s3_client, "boto3")

        def upload(prefix: str) -> None:
            if source.is_dir():
                store(prefix).log_artifacts(source)
            else:
                store(prefix).log_artifact(source)

        def upload_round() -> tuple[tuple[str], dict[str, Any]]:
            ours_remote.clear()
            boto3_prefix = boto3_remote.fresh()
            boto3_rounds.run(lambda: boto3_upload(s3_client, source, boto3_prefix))
            return (ours_remote.fresh(),), {}

        benchmark.pedantic(
            upload, setup=upload_round, rounds=S3_ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        for remote in (ours_remote, boto3_remote):
            assert list_sizes(s3_client, remote.current or "") == _expected_sizes(source)
            remote.clear()
    else:
        ours_local, boto3_local = FreshDirs(workdir), FreshDirs(workdir)

        def download(destination: Path) -> None:
            store(logged).download_artifacts("", destination)

        def download_round() -> tuple[tuple[Path], dict[str, Any]]:
            ours_local.clear()
            boto3_destination = boto3_local.fresh()
            boto3_rounds.run(lambda: boto3_download(s3_client, logged, boto3_destination))
            return (ours_local.fresh(),), {}

        benchmark.pedantic(
            download, setup=download_round, rounds=S3_ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        for local in (ours_local, boto3_local):
            assert _local_sizes(local.current or Path()) == _expected_sizes(source)
            local.clear()

    ours = benchmark.stats.stats.median
    benchmark.extra_info["scenario"] = scenario
    benchmark.extra_info["median_s"] = ours
    for peer, theirs in (("boto3", boto3_rounds.median()), ("mlflow", mlflow_s3[scenario])):
        benchmark.extra_info[f"{peer}_median_s"] = theirs
        benchmark.extra_info[f"ratio_vs_{peer}"] = ours / theirs


# -- pd.read_parquet of one column: ranged reads against a full download -----------------------------
@pytest.fixture(scope="session")
def parquet_table(s3: S3Bench) -> pa.Table:
    rng = np.random.default_rng(0)
    table = pa.table({f"c{i}": rng.random(PARQUET_ROWS) for i in range(PARQUET_COLUMNS)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    s3.client.put_object(Bucket=BUCKET, Key=PARQUET_KEY, Body=buffer.getvalue())
    return table


def _fetched_bytes(fs: Any, operation: Callable[[], Any]) -> int:
    """Body bytes the server sent for GetObject during ``operation`` (ranged or not)."""
    client = sync(fs.loop, fs.set_session)
    total = 0

    def count(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal total
        total += int(parsed.get("ContentLength") or 0)

    client.meta.events.register("after-call.s3.GetObject", count)
    try:
        operation()
    finally:
        client.meta.events.unregister("after-call.s3.GetObject", count)
    return total


def test_read_parquet_column_s3(benchmark: Any, s3: S3Bench, parquet_table: pa.Table, workdir: Path) -> None:
    s3_client, store_options = s3.client, s3.store_options
    uri = f"s3://{BUCKET}/{PARQUET_KEY}"
    size = int(s3_client.head_object(Bucket=BUCKET, Key=PARQUET_KEY)["ContentLength"])
    expected = parquet_table.column("c0").to_numpy()

    def ours() -> pd.DataFrame:
        fs, path = artifact_fs.url_to_fs(uri, **store_options)
        return pd.read_parquet(path, columns=["c0"], filesystem=fs)

    local = FreshDirs(workdir)
    boto3_rounds = PeerRounds(WARMUP_ROUNDS)

    def full_download(destination: Path) -> pd.DataFrame:
        s3_client.download_file(BUCKET, PARQUET_KEY, str(destination / "wide.parquet"))
        return pd.read_parquet(destination / "wide.parquet", columns=["c0"])

    def boto3_round() -> None:
        destination = local.fresh()
        boto3_rounds.run(lambda: full_download(destination))

    frame = benchmark.pedantic(
        ours, setup=boto3_round, rounds=S3_ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
    )
    assert list(frame.columns) == ["c0"]
    assert np.array_equal(frame["c0"].to_numpy(), expected)
    assert np.array_equal(full_download(local.current or Path())["c0"].to_numpy(), expected)
    local.clear()

    fs, _ = artifact_fs.url_to_fs(uri, **store_options)
    fetched = _fetched_bytes(fs, ours)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "scenario": "parquet-one-column",
            "median_s": median,
            "object_bytes": size,
            "bytes_fetched": fetched,
            "fraction_fetched": fetched / size,
            "boto3_full_download_median_s": boto3_rounds.median(),
            "boto3_bytes_fetched": size,
            "ratio_vs_boto3": median / boto3_rounds.median(),
        }
    )
