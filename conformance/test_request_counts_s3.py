"""Requests and bytes per operation directly on S3: the deterministic guards of issue #13.

A counting HTTP relay sits between artifact_fs and SeaweedFS and records every S3 request by
operation (and the body bytes each moved). No timing is asserted: a tree transfer of N files costs N
object requests plus a constant, a tree upload lists nothing, a large download is its ranges and
nothing more (no abandoned whole-object GET), and a one-column Parquet read moves at most 1.2x the
column's bytes.

With digests on (issue #18, the default) each uploaded file also costs one PUT of its record in
the bucket's hidden tree (``digest-put``, counted apart). A small file's object carries a copy of
its record in its metadata, so downloading it costs nothing more: the record comes with the GET.
A file without one (large, or written by another tool) costs one GET of the hidden record
(``digest-get``). Every tree guard also runs with ``ARTIFACT_FS_DIGESTS=false``.
"""

from __future__ import annotations

import io
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs

import artifact_fs
from artifact_fs import integrity, settings
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.policy import DOWNLOAD_PART_SIZE
from conformance.backends.s3 import BUCKET
from conformance.helpers import (
    BEYOND_FOOTER_LIMIT,
    COLUMN_BYTES_LIMIT,
    RequestCountingProxy,
    column_bytes_beyond_footer,
    random_bytes,
    s3_kind,
    write_tree,
)
from conformance.servers.seaweedfs import SeaweedFS

pytestmark = pytest.mark.s3

FILES = 120
TREE = {"": 30, "a": 40, "a/b": 30, "c": 20}
"""Files per directory: 120 small files in 4 directories."""
SLACK = 2
"""Requests allowed beyond the per-file ones (a bucket check, a second listing page)."""
DIGESTS_OFF = {"ARTIFACT_FS_DIGESTS": "false"}


def s3_or_digest_kind(method: str, target: str) -> str:
    """:func:`s3_kind`, prefixed ``digest-`` for a request on a digest record (a sidecar object)."""
    kind = s3_kind(method, target)
    parts = urlsplit(target)
    return f"digest-{kind}" if f"/{DIGEST_DIRECTORY}/" in unquote(parts.path) else kind


def digest_requests(kinds: Mapping[str, int]) -> dict[str, int]:
    return {kind: count for kind, count in kinds.items() if kind.startswith("digest-")}


@pytest.fixture(params=[True, False], ids=["digests-on", "digests-off"])
def digests(request: pytest.FixtureRequest) -> bool:
    """Each tree guard runs with digest records (the default) and with ``ARTIFACT_FS_DIGESTS=false``."""
    return bool(request.param)


@pytest.fixture(scope="module")
def proxy(seaweedfs_server: SeaweedFS) -> Iterator[RequestCountingProxy]:
    relay = RequestCountingProxy(
        int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), classify=s3_or_digest_kind
    )
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def root(seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy) -> tuple[str, dict[str, Any]]:
    """A fresh artifact root on SeaweedFS, and the storage options that reach it through the relay."""
    uri = f"s3://{BUCKET}/request-counts/{uuid.uuid4().hex[:12]}"
    return uri, seaweedfs_server.storage_options(proxy.url)


def _tree(source: Path) -> dict[str, bytes]:
    expected = write_tree(source, TREE)
    assert len(expected) == FILES
    return expected


def _downloaded(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def _store(
    root: tuple[str, dict[str, Any]], path: str = "", *, digests: bool = True
) -> artifact_fs.ArtifactStore:
    uri, options = root
    environ = {} if digests else DIGESTS_OFF
    return artifact_fs.ArtifactStore(f"{uri}/{path}".rstrip("/"), environ=environ, **options)


def test_tree_upload_is_one_put_per_file_and_lists_nothing(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy, tmp_path: Path, digests: bool
) -> None:
    _tree(tmp_path / "source")
    store = _store(root, digests=digests)
    proxy.reset()

    store.log_artifacts(str(tmp_path / "source"))

    kinds = proxy.reset()
    records = FILES if digests else 0
    assert kinds["put"] == FILES, kinds
    assert digest_requests(kinds) == ({"digest-put": FILES} if digests else {}), kinds
    assert kinds["list"] == 0 and kinds["head"] == 0 and kinds["head-bucket"] == 0, kinds
    assert sum(kinds.values()) <= FILES + records + SLACK, kinds


def test_tree_download_is_one_listing_and_one_get_per_file(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy, tmp_path: Path, digests: bool
) -> None:
    expected = _tree(tmp_path / "source")
    _store(root, digests=digests).log_artifacts(str(tmp_path / "source"))
    (tmp_path / "all").mkdir()
    (tmp_path / "a").mkdir()
    proxy.reset()

    _store(root, digests=digests).download_artifacts(dst_path=str(tmp_path / "all"))

    kinds = proxy.reset()
    assert _downloaded(tmp_path / "all") == expected
    assert kinds["get"] == FILES, kinds
    assert digest_requests(kinds) == {}, kinds  # each record came with its object's GET
    assert 1 <= kinds["list"] <= SLACK and kinds["head"] == 0, kinds
    assert sum(kinds.values()) <= FILES + SLACK, kinds

    _store(root, digests=digests).download_artifacts("a", dst_path=str(tmp_path / "a"))

    kinds = proxy.reset()
    in_a = {name: data for name, data in expected.items() if name.startswith("a/")}
    assert _downloaded(tmp_path / "a") == in_a
    assert kinds["get"] == len(in_a), kinds
    assert digest_requests(kinds) == {}, kinds
    assert 1 <= kinds["list"] <= SLACK, kinds  # the sub-tree is listed once, not once more per level


def test_large_download_is_its_ranges_and_no_abandoned_get(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy, tmp_path: Path, digests: bool
) -> None:
    size = 2 * DOWNLOAD_PART_SIZE + 3 * settings.MIB
    data = os.urandom(size)
    uri, options = root
    fs, path = artifact_fs.url_to_fs(f"{uri}/large.bin", **options)
    fs.pipe_file(path, data)
    proxy.reset()

    local = _store(root, digests=digests).download_artifacts("large.bin", dst_path=str(tmp_path))

    received, kinds = proxy.received["get"], proxy.reset()
    assert Path(local).read_bytes() == data
    assert kinds["get"] == math.ceil(size / DOWNLOAD_PART_SIZE), kinds
    # Nothing fetched twice, nothing started and dropped: the bodies add up to the object.
    assert received == size
    # Written behind the store's back, so it has no record: looking for one is one GET (a 404).
    lookups = digest_requests(kinds)
    assert lookups == ({"digest-get": 1} if digests else {}), kinds
    assert sum(kinds.values()) <= kinds["get"] + sum(lookups.values()) + SLACK, kinds


def test_empty_and_small_files_are_one_request_each(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    uri, options = root
    fs, path = artifact_fs.url_to_fs(uri, **options)
    fs.pipe_file(f"{path}/small.txt", b"small")
    fs.pipe_file(f"{path}/empty.txt", b"")
    proxy.reset()

    fs.get_file(f"{path}/small.txt", str(tmp_path / "small.txt"))
    assert proxy.reset()["get"] == 1
    fs.get_file(f"{path}/empty.txt", str(tmp_path / "empty.txt"))
    assert proxy.reset()["get"] <= 2  # S3 refuses any range of an empty object: one plain GET follows

    assert (tmp_path / "small.txt").read_bytes() == b"small"
    assert (tmp_path / "empty.txt").read_bytes() == b""


def test_one_parquet_column_moves_at_most_1_2x_its_bytes_in_no_more_requests_than_pyarrow(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy, seaweedfs_server: SeaweedFS
) -> None:
    rng = np.random.default_rng(0)
    table = pa.table({f"c{i}": rng.random(500_000) for i in range(6)})  # 6 x 4 MB columns
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    uri, options = root
    fs, path = artifact_fs.url_to_fs(f"{uri}/wide.parquet", **options)
    fs.pipe_file(path, buffer.getvalue())
    metadata = pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata
    column = sum(
        metadata.row_group(group).column(0).total_compressed_size for group in range(metadata.num_row_groups)
    )
    proxy.reset()

    read = pq.read_table(path, columns=["c0"], filesystem=fs)

    received, kinds = proxy.received["get"], proxy.reset()
    peer = pafs.S3FileSystem(
        access_key=seaweedfs_server.access_key,
        secret_key=seaweedfs_server.secret_key,
        endpoint_override=proxy.url,
        region=seaweedfs_server.region,
    )
    peer_read = pq.read_table(path, columns=["c0"], filesystem=peer)
    peer_kinds = proxy.reset()
    assert read.column("c0").equals(table.column("c0"))
    assert peer_read.column("c0").equals(table.column("c0"))
    # pyarrow opens the file twice and asks isfile before each open: an open takes that HEAD's
    # answer (object_store.OPEN_AFTER_HEAD), so the read asks what pyarrow's own S3 reader asks
    print(f"\ncolumn {column} B; {received / column:.2f}x in {dict(kinds)}, pyarrow {dict(peer_kinds)}")
    assert sum(kinds.values()) <= sum(peer_kinds.values()), (kinds, peer_kinds)
    assert received <= COLUMN_BYTES_LIMIT * column, (received, column, kinds)
    # each range is fetched as pyarrow asked it, no read-ahead block past it (block-readahead)
    assert column_bytes_beyond_footer(received, column) <= BEYOND_FOOTER_LIMIT, (received, column, kinds)


def test_a_streamed_write_sends_its_parts_concurrently(
    root: tuple[str, dict[str, Any]], proxy: RequestCountingProxy
) -> None:
    part = settings.S3_MIN_PART
    data = os.urandom(4 * part + 1234)
    uri, options = root
    fs, path = artifact_fs.url_to_fs(f"{uri}/streamed.bin", **options)
    # Until a store has answered one presigned request they go one at a time (s3_small): prove it.
    fs.pipe_file(f"{path}.first", b"one small presigned PUT")
    proxy.reset()
    proxy.gather("upload-part", 2)  # a sequential writer leaves the first part waiting alone

    with fs.open(path, "wb", block_size=part) as handle:  # as the server writes a proxied PUT
        handle.write(data[: 2 * part + 10])
        handle.write(data[2 * part + 10 :])

    peak, kinds = proxy.peak_in_flight["upload-part"], proxy.reset()
    assert kinds["create-multipart"] == 1 and kinds["complete-multipart"] == 1, kinds
    assert kinds["upload-part"] == 5, kinds
    assert peak >= 2, f"parts went up one at a time: {kinds}"
    assert fs.cat_file(path) == data


def test_a_carried_record_is_checked_and_a_replaced_object_falls_back_to_the_hidden_one(
    root: tuple[str, dict[str, Any]], seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """The copy of a record in an object's metadata is what a download checks, for free; an object
    replaced through the SDK carries none, and the hidden record (one GET) still catches it."""
    source = tmp_path / "model.bin"
    source.write_bytes(random_bytes(4096, seed=7))
    store = _store(root)
    store.log_artifact(str(source))
    uri, _ = root
    key = f"{uri.split('/', 3)[3]}/model.bin"
    client = seaweedfs_server.client()
    carried = client.head_object(Bucket=BUCKET, Key=key)["Metadata"][integrity.METADATA_KEY]
    assert integrity.Record.parse(carried) == integrity.file_digests(source)

    # Other bytes under the same carried record: the GET's own record fails them, nothing else asked.
    client.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 4096, Metadata={integrity.METADATA_KEY: carried})
    (tmp_path / "one").mkdir()
    proxy.reset()
    with pytest.raises(OSError, match="recorded digest"):
        store.download_artifacts("model.bin", str(tmp_path / "one"))
    kinds = proxy.reset()
    assert kinds["get"] == 1 and digest_requests(kinds) == {}, kinds
    assert not (tmp_path / "one" / "model.bin").exists()

    # Replaced without metadata (any other tool): the hidden record is asked, and fails it too.
    client.put_object(Bucket=BUCKET, Key=key, Body=b"y" * 4096)
    (tmp_path / "two").mkdir()
    with pytest.raises(OSError, match="recorded digest"):
        store.download_artifacts("model.bin", str(tmp_path / "two"))
    kinds = proxy.reset()
    assert kinds["get"] == 1 and digest_requests(kinds) == {"digest-get": 1}, kinds
    assert not (tmp_path / "two" / "model.bin").exists()


def test_a_tree_another_tool_wrote_is_one_get_per_file_and_one_listing_of_records(
    root: tuple[str, dict[str, Any]], seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """Objects MLflow (or boto3) wrote carry no record and have none in the hidden tree: the tree's
    records are listed once, when the first file needs one, and no file asks for its own. Files that
    do have a hidden record (large ones, which carry no copy) are still asked for, and checked."""
    uri, _ = root
    prefix = uri.split("/", 3)[3]
    client = seaweedfs_server.client()
    expected = {
        f"d{index % 3}/other{index:02d}.bin": random_bytes(1000 + index, seed=index) for index in range(30)
    }
    for name, data in expected.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=data)
    for index in range(2):  # over the in-place hashing limit: the record is only in the hidden tree
        large = tmp_path / "large" / f"large{index}.bin"
        large.parent.mkdir(parents=True, exist_ok=True)
        large.write_bytes(random_bytes(300 * 1024, seed=100 + index))
        expected[f"large{index}.bin"] = large.read_bytes()
    _store(root).log_artifacts(str(tmp_path / "large"))
    (tmp_path / "out").mkdir()
    proxy.reset()

    _store(root).download_artifacts(dst_path=str(tmp_path / "out"))

    kinds = proxy.reset()
    assert _downloaded(tmp_path / "out") == expected
    assert kinds["get"] == len(expected), kinds
    assert digest_requests(kinds) == {"digest-get": 2}, kinds  # only the two records that exist
    assert kinds["list"] <= 2 + SLACK, kinds  # the tree, then its records, once each
    assert sum(kinds.values()) <= len(expected) + 2 + 2 + SLACK, kinds

    # A recorded file replaced behind artifact_fs's back is still caught in a tree download.
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/large1.bin", Body=b"z" * (300 * 1024))
    (tmp_path / "again").mkdir()
    with pytest.raises(OSError, match="large1.bin"):
        _store(root).download_artifacts(dst_path=str(tmp_path / "again"))
    assert not (tmp_path / "again" / "large1.bin").exists()
