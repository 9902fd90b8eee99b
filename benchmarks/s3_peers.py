"""The S3 peers of ``test_s3.py``: raw boto3 and MLflow's ``S3ArtifactRepository``, same data, same server.

boto3 runs in this process with its own defaults (a plain client, ``TransferConfig()``: 8 MiB
threshold and parts, 10 threads per file); a tree is a simple loop of ``upload_file`` /
``download_file`` over the listed keys. MLflow's ``S3ArtifactRepository`` is timed by
``mlflow_peers.py``, configured only through ``MLFLOW_S3_ENDPOINT_URL`` and the AWS variables.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUCKET = "bench"


def boto3_client(endpoint_url: str, access_key: str, secret_key: str, region: str) -> Any:
    """A boto3 client as a user makes one (botocore's default config, as MLflow's client)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )


def delete_prefix(client: Any, prefix: str, bucket: str = BUCKET) -> None:
    """Delete every object under ``prefix/`` (not timed: between rounds)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def list_sizes(client: Any, prefix: str, bucket: str = BUCKET) -> dict[str, int]:
    """``{relative key: size}`` under ``prefix/``."""
    base = prefix.rstrip("/") + "/"
    sizes = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for item in page.get("Contents", []):
            sizes[item["Key"][len(base) :]] = int(item["Size"])
    return sizes


def boto3_upload(client: Any, source: Path, prefix: str, bucket: str = BUCKET) -> None:
    """``upload_file`` of one file, or of each file of a tree in a simple loop."""
    if source.is_file():
        client.upload_file(str(source), bucket, f"{prefix}/{source.name}")
        return
    for dirpath, _dirnames, filenames in os.walk(source):
        relative = Path(dirpath).relative_to(source).as_posix()
        for filename in filenames:
            key = f"{prefix}/{filename}" if relative == "." else f"{prefix}/{relative}/{filename}"
            client.upload_file(os.path.join(dirpath, filename), bucket, key)


def boto3_download(client: Any, prefix: str, destination: Path, bucket: str = BUCKET) -> None:
    """List ``prefix/`` and ``download_file`` each key in a simple loop."""
    for relative in list_sizes(client, prefix, bucket):
        local = destination / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, f"{prefix}/{relative}", str(local))


class PeerRounds:
    """A peer's rounds, timed with ``time.perf_counter`` one at a time between artifact_fs's rounds.

    Interleaving (one peer round, then one of ours, from ``benchmark.pedantic``'s ``setup``) keeps a
    busy machine's load changes out of the ratio; the first ``warmup_rounds`` are dropped. Each round
    starts after ``os.sync()``, as each of ours does (the suites' setups end with it): a round that
    follows another's 256 MiB download would otherwise wait on that one's writeback, and on this
    machine's disk the order alone moved a ratio by 0.4.
    """

    def __init__(self, warmup_rounds: int) -> None:
        self.warmup_rounds = warmup_rounds
        self.timings: list[float] = []

    def run(self, operation: Callable[[], Any]) -> None:
        os.sync()
        start = time.perf_counter()
        operation()
        self.record(time.perf_counter() - start)

    def record(self, seconds: float) -> None:
        """A round the peer timed itself (MLflow's, inside its own process)."""
        self.timings.append(seconds)

    def median(self) -> float:
        return statistics.median(self.timings[self.warmup_rounds :])


# -- the best peers: boto3 tuned as issue #13 asks, and s3fs -----------------------------------------
TUNED_THREADS = 16
"""Files in flight for a tree with tuned boto3 (one client is thread-safe)."""


def tuned_transfer_config() -> Any:
    """boto3's ``TransferConfig`` tuned for throughput: 16 MiB parts, 8 in flight per file."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=8
    )


def tuned_boto3_upload(client: Any, source: Path, prefix: str, bucket: str = BUCKET) -> None:
    """``upload_file`` with the tuned config; a tree's files on 16 threads."""
    from concurrent.futures import ThreadPoolExecutor

    config = tuned_transfer_config()
    if source.is_file():
        client.upload_file(str(source), bucket, f"{prefix}/{source.name}", Config=config)
        return
    jobs = [
        (str(path), f"{prefix}/{path.relative_to(source).as_posix()}")
        for path in source.rglob("*")
        if path.is_file()
    ]
    with ThreadPoolExecutor(TUNED_THREADS) as pool:
        list(pool.map(lambda job: client.upload_file(job[0], bucket, job[1], Config=config), jobs))


def tuned_boto3_download(client: Any, prefix: str, destination: Path, bucket: str = BUCKET) -> None:
    """One paginated listing, then ``download_file`` with the tuned config on 16 threads."""
    from concurrent.futures import ThreadPoolExecutor

    config = tuned_transfer_config()
    relatives = list(list_sizes(client, prefix, bucket))
    for relative in relatives:
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)

    def download(relative: str) -> None:
        client.download_file(bucket, f"{prefix}/{relative}", str(destination / relative), Config=config)

    with ThreadPoolExecutor(TUNED_THREADS) as pool:
        list(pool.map(download, relatives))


def s3fs_filesystem(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    """Plain s3fs with its defaults, as another fsspec user makes it."""
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint_url, key=access_key, secret=secret_key, skip_instance_cache=True
    )


def s3fs_upload(fs: Any, source: Path, prefix: str, bucket: str = BUCKET) -> None:
    """``put`` of one file or of a whole tree (fsspec's batched coroutines)."""
    if source.is_file():
        fs.put_file(str(source), f"{bucket}/{prefix}/{source.name}")
    else:
        fs.put(f"{source}/", f"{bucket}/{prefix}/", recursive=True)


def s3fs_download(fs: Any, prefix: str, destination: Path, bucket: str = BUCKET) -> None:
    """``get`` of a whole prefix (one listing, batched GETs)."""
    fs.invalidate_cache()
    fs.get(f"{bucket}/{prefix}/", f"{destination}/", recursive=True)


def boto3_list(client: Any, prefix: str, bucket: str = BUCKET) -> int:
    """The number of objects under ``prefix/``, listed with boto3's paginator."""
    return len(list_sizes(client, prefix, bucket))
