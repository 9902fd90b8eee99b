"""ArtifactStore on ``s3://`` (a real SeaweedFS) against tuned boto3, s3fs and MLflow's S3ArtifactRepository.

The session starts its own SeaweedFS (auth enforced) with the conformance launcher. Scenarios, on the
shared data of ``conftest.py`` (sizes in ``sizes.py``): 1,000 x 16 KiB files (log_artifacts /
download_artifacts of a tree) and one 256 MiB file (log_artifact, a multipart upload; download of
the root). Peers run on the same server with the same data in the same session (``s3_peers.py``):
boto3 with a tuned ``TransferConfig`` (16 MiB parts, 8 per file, a tree's files on 16 threads) and
plain s3fs (``put`` / ``get``, its batched coroutines), one round of each before each of our rounds
(interleaved, so a busy machine's load changes stay out of the ratio), and MLflow's own repository
in its virtual environment (one subprocess, its rounds in a block before ours). Each artifact_fs
benchmark stores the peers' medians and ``ratio_vs_<peer>`` (our median divided by theirs; below 1
is faster) and ``ratio_vs_best`` (against the faster of tuned boto3 and s3fs) in ``extra_info``.

The same scenarios run again with artifact_fs's own client through ``artifact-fs serve`` (one
worker, the bucket as its destination, presigned uploads and downloads advertised; ``served-s3-*``),
against the same direct peers: the server's cost over going to S3 directly. The 256 MiB download
runs a third time through a server that streams it (``proxied-s3-*``, presigned downloads off).

A listing benchmark lists 10,000 objects with ``list_artifacts`` against boto3's paginator, directly
and through the server, and a Parquet benchmark reads one column of an 8-column object with
``pd.read_parquet`` through artifact_fs's filesystem (ranged reads) against pyarrow's own S3
reader, reporting the bytes each fetched from the server against the column's bytes.

Every implementation constructs its repository (or store) inside the timing, as a user would; the
boto3 client is made once (MLflow caches its client too). Each timing has one warm-up round.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import Scratch, file_sizes
from mlflow_peers import mlflow_repository_timings
from s3_peers import (
    BUCKET,
    PeerRounds,
    boto3_client,
    boto3_list,
    boto3_upload,
    delete_prefix,
    list_sizes,
    s3fs_download,
    s3fs_filesystem,
    s3fs_upload,
    tuned_boto3_download,
    tuned_boto3_upload,
)
from sizes import LISTED_OBJECTS, PARQUET_ROWS, ROUNDS, WARMUP_ROUNDS

import artifact_fs
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.store import ArtifactStore
from conformance.helpers import RequestCountingProxy, s3_kind
from conformance.servers.artifact_server import start_artifact_server
from conformance.servers.seaweedfs import SeaweedFS, start_seaweedfs

pytestmark = [pytest.mark.benchmark(group="store-s3"), pytest.mark.timeout(900)]
SCENARIOS = ["small-upload", "small-download", "large-upload", "large-download"]
ROUTES = ["direct", "served"]
"""``s3://`` from this process, or artifact_fs's client through ``artifact-fs serve`` on the bucket."""
CASES = [(scenario, route) for scenario in SCENARIOS for route in ROUTES] + [("large-download", "proxied")]
"""Every scenario both ways, and the large download once more through a server that streams it
(presigned downloads not advertised, MLflow's default), where ``served`` hands out presigned URLs."""
SERVED_PREFIX = {"direct": "s3", "served": "served-s3", "proxied": "proxied-s3"}
S3_ROUNDS = ROUNDS
PARQUET_KEY = "parquet/wide.parquet"
PARQUET_ROUNDS = 4 * ROUNDS
"""Rounds of the one-column read: at ~80 ms a read, five rounds left the ratio within +-30%."""
PARQUET_COLUMNS = 8
LISTING_PREFIX = "listing/flat"


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

    def environ(self) -> dict[str, str]:
        """The server's variables, with botocore's flexible checksums on as the boto3 peers' default
        client has them (a CRC per part; artifact_fs's parts then carry CRC32C, not Content-MD5)."""
        return {**self.server.environ(), "AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported"}

    def store(self, prefix: str) -> ArtifactStore:
        return ArtifactStore(f"s3://{BUCKET}/{prefix}", environ=self.environ(), **self.store_options)


@pytest.fixture(scope="session")
def s3(seaweedfs: SeaweedFS, small: Any, large: Any) -> S3Bench:
    server = seaweedfs
    client = boto3_client(server.endpoint_url, server.access_key, server.secret_key, server.region)
    logged = {}
    for dataset in (small, large):
        logged[dataset.name] = f"logged/{dataset.name}"
        boto3_upload(client, dataset.source, logged[dataset.name])
    return S3Bench(server, client, logged)


@dataclass(frozen=True)
class ServedS3:
    """``artifact-fs serve`` with the benchmark's bucket as its destination (one worker)."""

    artifacts_url: str

    def store(self, prefix: str) -> ArtifactStore:
        """artifact_fs's own client through the server: the bucket's ``prefix``, by its artifact URL."""
        return ArtifactStore(f"{self.artifacts_url}/{prefix}")


@pytest.fixture(scope="session")
def served_s3(s3: S3Bench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedS3]:
    """The server on this SeaweedFS bucket's root, so the logged data sits at the same paths.

    As in the conformance suite on SeaweedFS, presigned multipart uploads and presigned downloads
    are advertised (docs/server.md): small files go through it in batches, a 256 MiB upload as one
    streamed PUT, a 256 MiB download as concurrent ranges of a presigned URL.
    """
    yield from _served(s3, tmp_path_factory, "served-s3", download="true")


@pytest.fixture(scope="session")
def proxied_s3(s3: S3Bench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedS3]:
    """The same server without presigned downloads (MLflow's default): every byte goes through it."""
    yield from _served(s3, tmp_path_factory, "proxied-s3", download="false")


def _served(
    s3: S3Bench, tmp_path_factory: pytest.TempPathFactory, name: str, download: str
) -> Iterator[ServedS3]:
    environ = {
        **s3.environ(),
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": download,
    }
    server = start_artifact_server(
        tmp_path_factory.mktemp(f"{name}-logs"), f"s3://{BUCKET}", env=environ, name=name
    )
    try:
        yield ServedS3(server.artifacts_url)
    finally:
        server.stop()


def _artifacts_only(sizes: dict[str, int]) -> dict[str, int]:
    """Stored keys without artifact_fs's digest records (``.artifact.digests/``, docs/integrity.md)."""
    return {key: size for key, size in sizes.items() if DIGEST_DIRECTORY not in key.split("/")}


# -- MLflow: timed once per session, before the artifact_fs benchmarks read it ---------------------
@pytest.fixture(scope="session")
def mlflow_s3(s3: S3Bench, small: Any, large: Any, workdir: Path) -> dict[str, float]:
    """Median seconds of MLflow's S3ArtifactRepository, timed in-process in MLflow's venv."""
    datasets = {
        d.name: {
            "source": str(d.source),
            "logged": s3.logged[d.name],
            "files": len(file_sizes(d.source)),
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
@pytest.mark.parametrize(("scenario", "route"), CASES)
def test_artifact_fs_s3(
    benchmark: Any,
    request: pytest.FixtureRequest,
    s3: S3Bench,
    scenario: str,
    route: str,
) -> None:
    """artifact_fs on S3, directly (``s3://``) or with its own client through ``artifact-fs serve``
    on the same bucket, beside tuned boto3 and s3fs going directly (and MLflow's S3 repository)."""
    mlflow_s3: dict[str, float] = request.getfixturevalue("mlflow_s3") if route == "direct" else {}
    workdir: Path = request.getfixturevalue("workdir")
    dataset_name, operation = scenario.split("-")
    source: Path = request.getfixturevalue(dataset_name).source
    logged = s3.logged[dataset_name]
    s3_client = s3.client
    store = s3.store if route == "direct" else request.getfixturevalue(f"{route}_s3").store
    server = s3.server
    s3fs_fs = s3fs_filesystem(server.endpoint_url, server.access_key, server.secret_key)
    peers = {"boto3_tuned": PeerRounds(WARMUP_ROUNDS), "s3fs": PeerRounds(WARMUP_ROUNDS)}

    if operation == "upload":
        remotes = {who: Prefixes(s3_client, who) for who in ("artifact_fs", *peers)}
        uploads = {
            "boto3_tuned": lambda prefix: tuned_boto3_upload(s3_client, source, prefix),
            "s3fs": lambda prefix: s3fs_upload(s3fs_fs, source, prefix),
        }

        def upload(prefix: str) -> None:
            if source.is_dir():
                store(prefix).log_artifacts(source)
            else:
                store(prefix).log_artifact(source)

        def upload_round() -> tuple[tuple[str], dict[str, Any]]:
            remotes["artifact_fs"].clear()
            for peer, rounds in peers.items():
                prefix = remotes[peer].fresh()
                rounds.run(lambda peer=peer, prefix=prefix: uploads[peer](prefix))
            os.sync()  # as before each peer round (PeerRounds.run)
            return (remotes["artifact_fs"].fresh(),), {}

        benchmark.pedantic(
            upload, setup=upload_round, rounds=S3_ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        for who, remote in remotes.items():
            stored = _artifacts_only(list_sizes(s3_client, remote.current or ""))
            assert stored == file_sizes(source), who
            remote.clear()
    else:
        locals_ = {who: Scratch(workdir) for who in ("artifact_fs", *peers)}
        downloads = {
            "boto3_tuned": lambda destination: tuned_boto3_download(s3_client, logged, destination),
            "s3fs": lambda destination: s3fs_download(s3fs_fs, logged, destination),
        }

        def download(destination: Path) -> None:
            store(logged).download_artifacts("", destination)

        def download_round() -> tuple[tuple[Path], dict[str, Any]]:
            locals_["artifact_fs"].clear()
            for peer, rounds in peers.items():
                destination = locals_[peer].fresh()
                rounds.run(lambda peer=peer, destination=destination: downloads[peer](destination))
            destination = locals_["artifact_fs"].fresh()
            os.sync()  # as before each peer round (PeerRounds.run)
            return (destination,), {}

        benchmark.pedantic(
            download, setup=download_round, rounds=S3_ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        for who, local in locals_.items():
            assert file_sizes(local.current or Path()) == file_sizes(source), who
            local.clear()

    ours = benchmark.stats.stats.median
    info = benchmark.extra_info
    info["scenario"] = f"{SERVED_PREFIX[route]}-{scenario}"
    info["median_s"] = ours
    medians = {peer: rounds.median() for peer, rounds in peers.items()}
    if scenario in mlflow_s3:
        medians["mlflow"] = mlflow_s3[scenario]
    for peer, theirs in medians.items():
        info[f"{peer}_median_s"] = theirs
        info[f"ratio_vs_{peer}"] = ours / theirs
    info["ratio_vs_best"] = ours / min(medians["boto3_tuned"], medians["s3fs"])


# -- listing 10,000 objects: list_artifacts against boto3's paginator ---------------------------------
@pytest.fixture(scope="session")
def listed_prefix(s3: S3Bench) -> str:
    """``LISTED_OBJECTS`` tiny objects in one flat prefix (written with s3fs's batched puts)."""
    server = s3.server
    fs = s3fs_filesystem(server.endpoint_url, server.access_key, server.secret_key)
    fs.pipe({f"{BUCKET}/{LISTING_PREFIX}/object-{index:05d}.txt": b"x" for index in range(LISTED_OBJECTS)})
    return LISTING_PREFIX


@pytest.mark.parametrize("route", ROUTES)
def test_list_artifacts_s3(
    benchmark: Any, request: pytest.FixtureRequest, s3: S3Bench, listed_prefix: str, route: str
) -> None:
    """``list_artifacts`` of one flat prefix, directly or through ``artifact-fs serve``."""
    store = s3.store if route == "direct" else request.getfixturevalue("served_s3").store
    boto3_rounds = PeerRounds(WARMUP_ROUNDS)

    def boto3_round() -> None:
        boto3_rounds.run(lambda: boto3_list(s3.client, listed_prefix))

    infos = benchmark.pedantic(
        lambda: store(listed_prefix).list_artifacts(),
        setup=boto3_round,
        rounds=S3_ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    assert len(infos) == LISTED_OBJECTS
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "scenario": f"{'s3' if route == 'direct' else 'served-s3'}-list-{LISTED_OBJECTS}",
            "median_s": ours,
            "boto3_paginator_median_s": boto3_rounds.median(),
            "ratio_vs_boto3_paginator": ours / boto3_rounds.median(),
        }
    )


# -- pd.read_parquet of one column: ranged reads against pyarrow's own S3 reader -------------------------
@pytest.fixture(scope="session")
def parquet_table(s3: S3Bench) -> pa.Table:
    rng = np.random.default_rng(0)
    table = pa.table({f"c{i}": rng.random(PARQUET_ROWS) for i in range(PARQUET_COLUMNS)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    s3.client.put_object(Bucket=BUCKET, Key=PARQUET_KEY, Body=buffer.getvalue())
    return table


def _fetched_bytes(s3: S3Bench, uri: str) -> int:
    """Response body bytes SeaweedFS sent for our one-column read, counted by a relay in front of it
    (every GET, presigned or through the SDK)."""
    with RequestCountingProxy(int(s3.server.endpoint_url.rsplit(":", 1)[1]), classify=s3_kind) as relay:
        options = {**s3.store_options, "endpoint_url": relay.url, "skip_instance_cache": True}
        fs, path = artifact_fs.url_to_fs(uri, **options)
        pd.read_parquet(path, columns=["c0"], filesystem=fs)
        return int(relay.received["get"])


def _column_bytes(table_bytes: bytes, column: int = 0) -> int:
    metadata = pq.ParquetFile(io.BytesIO(table_bytes)).metadata
    return sum(
        metadata.row_group(group).column(column).total_compressed_size
        for group in range(metadata.num_row_groups)
    )


def test_read_parquet_column_s3(benchmark: Any, s3: S3Bench, parquet_table: pa.Table) -> None:
    from pyarrow import fs as pafs

    # fsspec's instance cache on, as a user's repeated reads get it: pyarrow's peer reuses its
    # filesystem too (the harness turns the cache off to keep tests apart)
    store_options = {name: value for name, value in s3.store_options.items() if name != "skip_instance_cache"}
    uri = f"s3://{BUCKET}/{PARQUET_KEY}"
    body = s3.client.get_object(Bucket=BUCKET, Key=PARQUET_KEY)["Body"].read()
    size, column_bytes = len(body), _column_bytes(body)
    expected = parquet_table.column("c0").to_numpy()
    server = s3.server
    pyarrow_s3 = pafs.S3FileSystem(
        access_key=server.access_key,
        secret_key=server.secret_key,
        endpoint_override=server.endpoint_url,
        region=server.region,
    )

    def ours() -> pd.DataFrame:
        fs, path = artifact_fs.url_to_fs(uri, **store_options)
        return pd.read_parquet(path, columns=["c0"], filesystem=fs)

    def pyarrow_reader() -> pd.DataFrame:
        return pd.read_parquet(f"{BUCKET}/{PARQUET_KEY}", columns=["c0"], filesystem=pyarrow_s3)

    pyarrow_rounds = PeerRounds(WARMUP_ROUNDS)
    frame = benchmark.pedantic(
        ours,
        setup=lambda: pyarrow_rounds.run(pyarrow_reader),
        rounds=PARQUET_ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    assert list(frame.columns) == ["c0"]
    assert np.array_equal(frame["c0"].to_numpy(), expected)
    assert np.array_equal(pyarrow_reader()["c0"].to_numpy(), expected)

    fetched = _fetched_bytes(s3, uri)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "scenario": "s3-parquet-one-column",
            "median_s": median,
            "object_bytes": size,
            "column_bytes": column_bytes,
            "bytes_fetched": fetched,
            "bytes_vs_column": fetched / column_bytes,
            "pyarrow_s3_median_s": pyarrow_rounds.median(),
            "ratio_vs_pyarrow_s3": median / pyarrow_rounds.median(),
        }
    )
