"""Requests per download directly on GCS (fake-gcs-server) and Azure (Azurite): issue #13's guards.

A counting HTTP relay sits between artifact_fs and the emulator and records every request by kind.
No timing is asserted. With digests on (issue #18, the default) a small file's object carries a copy
of its record in its metadata (``x-goog-meta-artifact-fs-digest``, ``x-ms-meta-artifact_fs_digest``),
so downloading N artifact_fs-logged files is N object GETs and no GET of a hidden record; the carried
record is checked like the hidden one; an object replaced without it falls back to the hidden record
(one GET, a 404 when there is none); and a large file is its ranges, nothing fetched twice or dropped.
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fsspec.asyn import sync
from fsspec.callbacks import Callback

import artifact_fs
from artifact_fs import integrity, settings
from artifact_fs.backends import object_store
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.policy import DOWNLOAD_PART_SIZE
from conformance.helpers import RequestCountingProxy, random_bytes, write_tree
from conformance.servers import azurite, fake_gcs
from conformance.servers.launcher import ServerProcess

BUCKET = "artifacts"
TREE = {"": 12, "a": 16, "a/b": 12}
FILES = sum(TREE.values())
SLACK = 2
"""Requests allowed beyond the per-file ones (a bucket check, a second listing page)."""
DIGESTS_OFF = {"ARTIFACT_FS_DIGESTS": "false"}


def gcs_kind(method: str, target: str) -> str:
    """The GCS JSON API operation of a request: ``get`` is a media GET (the object's bytes)."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    if method == "GET" and path.startswith("/download/storage/v1/"):
        kind = "get"
    elif method == "GET" and path.rstrip("/").endswith("/o"):
        kind = "list"
    elif method == "GET" and "/o/" in path:
        kind = "metadata"
    elif method in ("POST", "PUT") and path.startswith("/upload/"):
        kind = "upload"
    else:
        kind = f"{method.lower()} other"
    return f"digest-{kind}" if f"/{DIGEST_DIRECTORY}/" in path else kind


def azure_kind(method: str, target: str) -> str:
    """The Blob API operation of a path-style request (``/account/container/blob?query``)."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    query = parse_qs(parts.query, keep_blank_values=True)
    if "comp" in query:
        kind = f"{method.lower()} {query['comp'][0]}"
    elif method == "GET":
        kind = "get" if path.strip("/").count("/") >= 2 else "get other"
    else:
        kind = method.lower()
    return f"digest-{kind}" if f"/{DIGEST_DIRECTORY}/" in path else kind


def digest_requests(kinds: Mapping[str, int]) -> dict[str, int]:
    return {kind: count for kind, count in kinds.items() if kind.startswith("digest-")}


@dataclass
class Store:
    """One emulator behind a counting relay: artifact roots through it, and the SDK around it."""

    name: str
    proxy: RequestCountingProxy
    uri: str
    options: dict[str, Any]
    replace: Callable[[str, bytes, dict[str, str] | None], None]
    """Write an object's bytes (and metadata) behind artifact_fs's back, given its key."""
    metadata: Callable[[str], dict[str, str]]
    """An object's metadata, given its key."""
    metadata_key: str

    def artifact_store(self, path: str = "", *, digests: bool = True) -> artifact_fs.ArtifactStore:
        environ = {} if digests else DIGESTS_OFF
        return artifact_fs.ArtifactStore(f"{self.uri}/{path}".rstrip("/"), environ=environ, **self.options)

    @property
    def prefix(self) -> str:
        """The key of the root (below the bucket or container)."""
        return self.uri.split("/", 3)[3]


def _gcs(server: ServerProcess, proxy: RequestCountingProxy, prefix: str) -> Store:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": fake_gcs.endpoint(server)},
    )
    bucket = client.bucket(BUCKET)

    def replace(key: str, data: bytes, metadata: dict[str, str] | None) -> None:
        blob = bucket.blob(key)
        blob.metadata = metadata
        blob.upload_from_string(data)

    def metadata(key: str) -> dict[str, str]:
        blob = bucket.get_blob(key)
        assert blob is not None
        return dict(blob.metadata or {})

    return Store(
        "gcs",
        proxy,
        f"gs://{BUCKET}/{prefix}",
        {"endpoint_url": proxy.url, "token": "anon", "project": "test", "skip_instance_cache": True},
        replace,
        metadata,
        integrity.METADATA_KEY,
    )


def _azure(server: ServerProcess, proxy: RequestCountingProxy, prefix: str) -> Store:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(
        azurite.connection_string(server)
    ).get_container_client(BUCKET)

    def replace(key: str, data: bytes, metadata: dict[str, str] | None) -> None:
        container.upload_blob(key, data, overwrite=True, metadata=metadata)

    def metadata(key: str) -> dict[str, str]:
        return dict(container.get_blob_client(key).get_blob_properties().metadata)

    return Store(
        "azure",
        proxy,
        f"wasbs://{BUCKET}@{azurite.ACCOUNT}.blob.core.windows.net/{prefix}",
        {
            "account_key": azurite.ACCOUNT_KEY,
            "account_url": f"{proxy.url}/{azurite.ACCOUNT}",
            "skip_instance_cache": True,
        },
        replace,
        metadata,
        integrity.IDENTIFIER_METADATA_KEY,
    )


@pytest.fixture(scope="module")
def gcs_proxy(fake_gcs_server: ServerProcess) -> Iterator[RequestCountingProxy]:
    with RequestCountingProxy(fake_gcs_server.port, classify=gcs_kind) as relay:
        yield relay


@pytest.fixture(scope="module")
def azure_proxy(azurite_server: ServerProcess) -> Iterator[RequestCountingProxy]:
    with RequestCountingProxy(azurite_server.port, classify=azure_kind) as relay:
        yield relay


@pytest.fixture(
    params=[pytest.param("gcs", marks=pytest.mark.gcs), pytest.param("azure", marks=pytest.mark.azure)]
)
def store(request: pytest.FixtureRequest) -> Store:
    """A fresh artifact root on GCS or Azure, reached through the counting relay."""
    prefix = f"request-counts/{uuid.uuid4().hex[:12]}"
    if request.param == "gcs":
        return _gcs(request.getfixturevalue("fake_gcs_server"), request.getfixturevalue("gcs_proxy"), prefix)
    return _azure(request.getfixturevalue("azurite_server"), request.getfixturevalue("azure_proxy"), prefix)


@pytest.fixture(params=[True, False], ids=["digests-on", "digests-off"])
def digests(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _downloaded(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def test_tree_download_is_one_get_per_file_and_no_record_get(
    store: Store, tmp_path: Path, digests: bool
) -> None:
    expected = write_tree(tmp_path / "source", TREE)
    store.artifact_store(digests=digests).log_artifacts(str(tmp_path / "source"))
    (tmp_path / "all").mkdir()
    store.proxy.reset()

    store.artifact_store(digests=digests).download_artifacts(dst_path=str(tmp_path / "all"))

    kinds = store.proxy.reset()
    assert _downloaded(tmp_path / "all") == expected
    assert kinds["get"] == FILES, kinds
    assert digest_requests(kinds) == {}, kinds  # each record came with its object's GET
    # Nothing asked per file (adlfs's find asks once whether the root itself is a blob).
    assert kinds["metadata"] + kinds["head"] <= 1, kinds
    assert sum(kinds.values()) <= FILES + SLACK, kinds


def test_small_files_carry_their_record(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(random_bytes(4096, seed=7))

    store.artifact_store().log_artifact(str(source))

    carried = store.metadata(f"{store.prefix}/model.bin")[store.metadata_key]
    assert integrity.Record.parse(carried) == integrity.file_digests(source)


def test_a_carried_record_is_checked_and_a_replaced_object_falls_back_to_the_hidden_one(
    store: Store, tmp_path: Path
) -> None:
    """The copy of a record in an object's metadata is what a download checks, for free; an object
    replaced through the SDK carries none, and the hidden record (one GET) still catches it."""
    source = tmp_path / "model.bin"
    source.write_bytes(random_bytes(4096, seed=7))
    artifacts = store.artifact_store()
    artifacts.log_artifact(str(source))
    key = f"{store.prefix}/model.bin"
    carried = store.metadata(key)[store.metadata_key]

    # Other bytes under the same carried record: the GET's own record fails them, nothing else asked.
    store.replace(key, b"x" * 4096, {store.metadata_key: carried})
    (tmp_path / "one").mkdir()
    store.proxy.reset()
    with pytest.raises(OSError, match="recorded digest"):
        artifacts.download_artifacts("model.bin", str(tmp_path / "one"))
    kinds = store.proxy.reset()
    assert kinds["get"] == 1 and digest_requests(kinds) == {}, kinds
    assert not (tmp_path / "one" / "model.bin").exists()

    # Replaced without metadata (any other tool): the hidden record is asked, and fails it too.
    store.replace(key, b"y" * 4096, None)
    (tmp_path / "two").mkdir()
    with pytest.raises(OSError, match="recorded digest"):
        artifacts.download_artifacts("model.bin", str(tmp_path / "two"))
    kinds = store.proxy.reset()
    assert kinds["get"] == 1 and digest_requests(kinds) == {"digest-get": 1}, kinds
    assert not (tmp_path / "two" / "model.bin").exists()


def test_large_download_is_its_ranges_and_no_abandoned_get(store: Store, tmp_path: Path) -> None:
    size = 2 * DOWNLOAD_PART_SIZE + 3 * settings.MIB
    data = os.urandom(size)
    store.replace(f"{store.prefix}/large.bin", data, None)
    store.proxy.reset()

    local = store.artifact_store().download_artifacts("large.bin", dst_path=str(tmp_path))

    received, kinds = store.proxy.received["get"], store.proxy.reset()
    assert Path(local).read_bytes() == data
    assert kinds["get"] == math.ceil(size / DOWNLOAD_PART_SIZE), kinds
    # Nothing fetched twice, nothing started and dropped: the bodies add up to the object.
    assert received == size
    # Written behind the store's back, so it has no record: looking for one is one GET (a 404).
    assert digest_requests(kinds) == {"digest-get": 1}, kinds
    # Finding that the path is a file is the listing's (adlfs asks for the blob's properties).
    assert sum(kinds.values()) <= kinds["get"] + 1 + SLACK, kinds


def test_empty_and_small_files_are_one_get_each(store: Store, tmp_path: Path) -> None:
    store.replace(f"{store.prefix}/small.txt", b"small", None)
    store.replace(f"{store.prefix}/empty.txt", b"", None)
    fs, path = artifact_fs.url_to_fs(store.uri, **store.options)
    store.proxy.reset()

    fs.get_file(f"{path}/small.txt", str(tmp_path / "small.txt"))
    kinds = store.proxy.reset()
    assert kinds["get"] == 1 and sum(kinds.values()) == 1, kinds  # no metadata asked first
    fs.get_file(f"{path}/empty.txt", str(tmp_path / "empty.txt"))
    kinds = store.proxy.reset()
    assert kinds["get"] <= 2 and sum(kinds.values()) == kinds["get"], kinds  # a range of an empty object
    # is refused: one plain GET follows

    assert (tmp_path / "small.txt").read_bytes() == b"small"
    assert (tmp_path / "empty.txt").read_bytes() == b""


def test_a_record_rides_a_chunked_upload_too(store: Store, tmp_path: Path) -> None:
    """``put_file(digest=)`` sets the metadata on the upload that makes the object, whatever its kind
    (GCS: resumable above 5 MiB; Azure: staged blocks above ``max_single_put_size``)."""
    source = tmp_path / "large.bin"
    source.write_bytes(os.urandom(6 * settings.MIB))
    record = integrity.file_digests(source)
    options = (
        {**store.options, "max_single_put_size": settings.MIB} if store.name == "azure" else store.options
    )
    fs, path = artifact_fs.url_to_fs(f"{store.uri}/large.bin", **options)

    fs.put_file(str(source), path, digest=record)

    assert store.metadata(f"{store.prefix}/large.bin")[store.metadata_key] == record.header()
    sink: dict[str, Any] = {}
    fs.get_file(path, str(tmp_path / "back.bin"), digest_sink=sink)
    assert sink["digest"] == record.header()
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


class ReplaceAfterFirstBytes(Callback):
    """Replaces the object as soon as the first bytes of its download arrive."""

    def __init__(self, replace: Callable[[], None]) -> None:
        super().__init__()
        self.replace: Callable[[], None] | None = replace

    def call(self, *args: Any, **kwargs: Any) -> None:
        if self.value and self.replace is not None:
            replace, self.replace = self.replace, None
            replace()


def test_an_object_replaced_mid_download_fails_it(store: Store, tmp_path: Path) -> None:
    """The later ranges are pinned to the version the first answer named: bytes of two versions are
    never mixed, and no partial file is left."""
    size = 2 * DOWNLOAD_PART_SIZE + settings.MIB
    key = f"{store.prefix}/moving.bin"
    store.replace(key, os.urandom(size), None)
    fs, path = artifact_fs.url_to_fs(f"{store.uri}/moving.bin", **store.options)
    callback = ReplaceAfterFirstBytes(lambda: store.replace(key, os.urandom(size), None))

    with pytest.raises(OSError) as failure:
        fs.get_file(path, str(tmp_path / "moving.bin"), callback=callback)
    assert not isinstance(failure.value, FileNotFoundError), failure.value  # it exists: it changed

    assert callback.replace is None  # it was replaced during the download
    assert not (tmp_path / "moving.bin").exists()
    # The Azure SDK leaves its other ranges running when one fails, and their failures unretrieved:
    # a finalizer that logs one in the middle of a later compile makes CPython 3.11 fail it.
    sync(fs.loop, _settle)


async def _settle() -> None:
    """Wait for the loop's leftover tasks and retrieve their outcomes."""
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if pending:
        done, _ = await asyncio.wait(pending, timeout=60)
        for task in done:
            if not task.cancelled():
                task.exception()


@pytest.mark.gcs
def test_gcs_download_without_ranges_is_one_get(
    fake_gcs_server: ServerProcess, gcs_proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``: one plain GET, however large the object."""
    store = _gcs(fake_gcs_server, gcs_proxy, f"request-counts/{uuid.uuid4().hex[:12]}")
    data = os.urandom(DOWNLOAD_PART_SIZE + settings.MIB)
    store.replace(f"{store.prefix}/whole.bin", data, None)
    environ = {"MLFLOW_ENABLE_MULTIPART_DOWNLOAD": "false"}
    fs, path = artifact_fs.url_to_fs(f"{store.uri}/whole.bin", environ=environ, **store.options)
    store.proxy.reset()

    fs.get_file(path, str(tmp_path / "whole.bin"))

    received, kinds = store.proxy.received["get"], store.proxy.reset()
    assert kinds == {"get": 1} and received == len(data), kinds
    assert (tmp_path / "whole.bin").read_bytes() == data


def _info_requests(kinds: Mapping[str, int]) -> int:
    """Requests asking for an object's details: GCS's metadata GETs, Azure's HEADs."""
    return kinds["metadata"] + kinds["head"]


def test_an_open_right_after_an_info_takes_its_answer(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow asks ``isfile`` before each open: the open takes that answer (once, within
    ``object_store.OPEN_AFTER_HEAD``) instead of asking again. An info of a file is one request
    (gcsfs asks for the object and lists its prefix at once: three). A write through the
    filesystem in between, a second open, or an older answer makes the open ask."""
    fs, root = artifact_fs.url_to_fs(store.uri, **store.options)
    path = f"{root}/model.bin"
    first, second = random_bytes(200_000, seed=33), random_bytes(100_000, seed=34)
    fs.pipe_file(path, first)
    store.proxy.reset()

    assert fs.isfile(path)
    with fs.open(path, "rb") as handle:
        assert handle.read() == first
    kinds = store.proxy.reset()
    assert _info_requests(kinds) == 1 and kinds["get"] == 1 and sum(kinds.values()) == 2, kinds
    with fs.open(path, "rb") as handle:  # the answer is taken once: this open asks its own
        assert handle.read(10) == first[:10]
    assert _info_requests(store.proxy.reset()) == 1

    assert fs.isfile(path)
    fs.pipe_file(path, second)  # through this filesystem: the kept answer is dropped
    with fs.open(path, "rb") as handle:
        assert handle.read() == second

    monkeypatch.setattr(object_store, "OPEN_AFTER_HEAD", 0.0)
    assert fs.info(path)["size"] == len(second)
    store.proxy.reset()
    with fs.open(path, "rb") as handle:  # an answer older than the window: the open asks
        assert handle.read() == second
    kinds = store.proxy.reset()
    assert _info_requests(kinds) == 1, kinds

    assert not fs.isfile(f"{root}/missing.bin")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{root}/missing.bin")
    assert fs.info(root)["type"] == "directory"


def test_pyarrow_reading_one_parquet_column_asks_what_its_own_readers_ask(store: Store) -> None:
    """``pq.read_table`` opens the file twice and asks ``isfile`` before each open: three detail
    requests (as pyarrow's own S3 reader makes; gcsfs made ten and five listings) and one GET for
    the footer and one for the column."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = artifact_fs.url_to_fs(store.uri, **store.options)
    table = pa.table({f"c{i}": np.arange(300_000, dtype="float64") * i for i in range(4)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    fs.pipe_file(f"{root}/table.parquet", buffer.getvalue())
    store.proxy.reset()
    read = pq.read_table(f"{root}/table.parquet", columns=["c1"], filesystem=fs)
    kinds = store.proxy.reset()
    assert read.column("c1").equals(table.column("c1"))
    assert _info_requests(kinds) == 3 and kinds["get"] == 2 and sum(kinds.values()) == 5, kinds


def test_a_version_stream_is_one_pinned_get_of_its_range(store: Store) -> None:
    """What the server streams a large answer from: on GCS one media GET of exactly the range,
    pinned to the generation ``open_version`` saw (the object replaced in between fails the read);
    Azure has none, and the server reads the open handle instead."""
    data = random_bytes(6 * settings.MIB, seed=21)
    artifacts = store.artifact_store()
    artifacts.fs.pipe_file("streamed.bin", data)
    handle, info = artifacts.open_version("streamed.bin")
    handle.close()
    opened = artifacts.version_stream("streamed.bin", info, settings.MIB, 4 * settings.MIB, settings.MIB)
    if store.name == "azure":
        assert opened is None
        return
    assert opened is not None

    def read(pieces: Any, loop: asyncio.AbstractEventLoop) -> bytes:
        async def gather() -> bytes:
            return b"".join([piece async for batch in pieces for piece in batch])

        return bytes(sync(loop, gather))

    store.proxy.reset()
    assert read(*opened) == data[settings.MIB : 5 * settings.MIB]
    fetched = store.proxy.received["get"]
    assert store.proxy.reset() == {"get": 1} and fetched == 4 * settings.MIB
    store.replace(f"{store.prefix}/streamed.bin", random_bytes(6 * settings.MIB, seed=22), None)
    again = artifacts.version_stream("streamed.bin", info, 0, len(data), settings.MIB)
    assert again is not None
    with pytest.raises(OSError):
        read(*again)
