"""Small S3 requests on presigned URLs (:mod:`artifact_fs.backends.s3_small`), counted by a relay.

A small file's PUT, its record's PUT, each download's first GET and a record's read go to SeaweedFS
as presigned URLs sent with aiohttp, a third of botocore's CPU per request (issue #13). These guards
check, by counting what reaches the store, that they do (and nothing more is asked), that a store
refusing presigned URLs gets the same transfers through the SDK, and that requests needing headers
of their own never take that path.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yarl
from fsspec.asyn import sync

import artifact_fs
from artifact_fs import settings
from artifact_fs.backends import object_store, s3_small, s3_upload
from conformance.backends.s3 import BUCKET
from conformance.helpers import RequestCountingProxy, random_bytes
from conformance.servers.faulty_proxy import FaultyProxy
from conformance.servers.seaweedfs import SeaweedFS
from conformance.test_request_counts_s3 import s3_or_digest_kind

pytestmark = pytest.mark.s3

FILES = 40


def presigned_or_sdk_kind(method: str, target: str) -> str:
    """:func:`s3_or_digest_kind`, prefixed ``url-`` for a request signed in its query string."""
    query = parse_qs(urlsplit(target).query)
    signed_in_query = "Signature" in query or "X-Amz-Signature" in query
    kind = s3_or_digest_kind(method, target)
    return f"url-{kind}" if signed_in_query else kind


@pytest.fixture(scope="module")
def proxy(seaweedfs_server: SeaweedFS) -> Iterator[RequestCountingProxy]:
    port = int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1])
    with RequestCountingProxy(port, classify=presigned_or_sdk_kind) as relay:
        yield relay


def _store(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy | FaultyProxy, **options: Any
) -> artifact_fs.ArtifactStore:
    return artifact_fs.ArtifactStore(
        f"s3://{BUCKET}/small-requests/{uuid.uuid4().hex[:12]}",
        endpoint_url=proxy.url,
        key=seaweedfs_server.access_key,
        secret=seaweedfs_server.secret_key,
        skip_instance_cache=True,
        **options,
    )


def _filesystem(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy | FaultyProxy, store: artifact_fs.ArtifactStore
) -> tuple[Any, str]:
    """A filesystem of its own (no instance cache) through ``proxy``, and ``store``'s root in it."""
    fs, root = artifact_fs.url_to_fs(
        str(store.uri),
        endpoint_url=proxy.url,
        key=seaweedfs_server.access_key,
        secret=seaweedfs_server.secret_key,
        skip_instance_cache=True,
    )
    return fs, root


def _tree(source: Path, count: int = FILES) -> dict[str, bytes]:
    expected = {}
    for index in range(count):
        relative = f"d{index % 4}/odd name+{index:02d} %é.bin"
        expected[relative] = random_bytes(2048 + index, seed=index)
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(expected[relative])
    return expected


def _downloaded(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def _round_trip(
    store: artifact_fs.ArtifactStore, proxy: RequestCountingProxy, tmp_path: Path
) -> tuple[Any, Any]:
    expected = _tree(tmp_path / "source")
    proxy.reset()
    store.log_artifacts(str(tmp_path / "source"))
    uploaded = proxy.reset()
    (tmp_path / "out").mkdir()
    store.download_artifacts("", str(tmp_path / "out"))
    downloaded = proxy.reset()
    assert _downloaded(tmp_path / "out") == expected
    return uploaded, downloaded


def _refuse_presigned_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store answer 403 to every presigned URL (a signature it cannot match)."""
    presign = s3_small.SmallRequests._url

    async def refused(self: s3_small.SmallRequests, *args: Any, **kwargs: Any) -> yarl.URL:
        url = await presign(self, *args, **kwargs)
        name = "Signature" if "Signature" in url.query else "X-Amz-Signature"
        return url.update_query({name: "0" * 40})

    monkeypatch.setattr(s3_small.SmallRequests, "_url", refused)


def test_small_files_and_their_records_go_on_presigned_urls(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    uploaded, downloaded = _round_trip(_store(seaweedfs_server, proxy), proxy, tmp_path)

    assert uploaded == {"url-put": FILES, "url-digest-put": FILES}, uploaded
    assert downloaded["url-get"] == FILES and downloaded["list"] <= 2, downloaded
    assert sum(downloaded.values()) == FILES + downloaded["list"], downloaded  # records ride with the GETs


def test_the_sdk_sends_them_when_turned_off_or_when_a_request_needs_its_own_headers(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    off = _store(seaweedfs_server, proxy, presigned_small_requests=False)
    uploaded, downloaded = _round_trip(off, proxy, tmp_path / "off")
    assert uploaded == {"put": FILES, "digest-put": FILES}, uploaded
    assert downloaded["get"] == FILES and not any(kind.startswith("url-") for kind in downloaded), downloaded

    # An upload argument a presigned PUT does not carry: uploads through the SDK, reads still presigned.
    acl = _store(seaweedfs_server, proxy, upload_extra_args={"ACL": "private"})
    uploaded, downloaded = _round_trip(acl, proxy, tmp_path / "acl")
    assert uploaded["put"] == FILES and "url-put" not in uploaded, uploaded
    assert downloaded["url-get"] == FILES, downloaded

    # Arguments every request carries (requester pays): nothing presigned at all.
    payer = _store(seaweedfs_server, proxy, s3_additional_kwargs={"RequestPayer": "requester"})
    uploaded, downloaded = _round_trip(payer, proxy, tmp_path / "payer")
    assert not any(kind.startswith("url-") for kind in (*uploaded, *downloaded)), (uploaded, downloaded)


def test_a_store_refusing_presigned_urls_gets_everything_through_the_sdk(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answers 403 to a presigned URL (here: a signature it cannot match): that request is
    sent again through the SDK, and the filesystem sends no other presigned request."""
    _refuse_presigned_urls(monkeypatch)
    uploaded, downloaded = _round_trip(_store(seaweedfs_server, proxy), proxy, tmp_path)

    assert uploaded.get("url-put", 0) + uploaded.get("url-digest-put", 0) == 1, uploaded  # the first only
    assert uploaded["put"] + uploaded.get("digest-put", 0) == 2 * FILES, uploaded
    assert "url-get" not in downloaded and downloaded["get"] == FILES, downloaded


def test_an_object_without_a_record_costs_one_record_read(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """Another tool's object carries no record and has none in the hidden tree: the presigned read of
    the record answers 404 once, which is final (not asked again through the SDK)."""
    store = _store(seaweedfs_server, proxy)
    key = f"{str(store.uri).split('/', 3)[3]}/other.bin"
    data = random_bytes(3000, seed=3)
    seaweedfs_server.client().put_object(Bucket=BUCKET, Key=key, Body=data)
    proxy.reset()

    store.download_artifacts("other.bin", str(tmp_path))

    assert (tmp_path / "other.bin").read_bytes() == data
    kinds = proxy.reset()
    assert kinds["url-get"] == 1 and kinds["url-digest-get"] == 1, kinds
    assert sum(kinds.values()) - kinds["list"] - kinds["head"] - kinds["url-head"] == 2, kinds


def test_resets_and_stalls_fall_back_to_the_sdk_and_stay_bounded(
    seaweedfs_server: SeaweedFS, tmp_path: Path
) -> None:
    """A connection reset on a presigned request sends it again through the SDK (whose retries then
    apply); a store that stops answering fails a small upload and download within the transfer
    timeout, the presigned attempt included."""
    proxy = FaultyProxy(
        int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), reset_rate=0.3, reset_within=4096
    )
    try:
        store = _store(seaweedfs_server, proxy)
        expected = _tree(tmp_path / "source", count=20)
        store.log_artifacts(str(tmp_path / "source"))
        (tmp_path / "out").mkdir()
        store.download_artifacts("", str(tmp_path / "out"))
        assert _downloaded(tmp_path / "out") == expected
        assert proxy.resets >= 1, proxy.exchanges

        # A file in parts: a part cut by a reset is sent again (through the SDK), bytes checked by MD5.
        proxy.reset_rate, proxy.reset_within = 0.05, PART
        source, data = _large(tmp_path)
        in_parts = _parts_store(seaweedfs_server, proxy)
        in_parts.log_artifact(str(source))
        assert _object(seaweedfs_server, in_parts, "weights.bin") == data

        proxy.reset_rate = 0.0
        bounded = artifact_fs.ArtifactStore(
            str(store.uri),
            environ={"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
            endpoint_url=proxy.url,
            key=seaweedfs_server.access_key,
            secret=seaweedfs_server.secret_key,
            skip_instance_cache=True,
        )
        (tmp_path / "big.bin").write_bytes(random_bytes(4 * 1024 * 1024, seed=4))
        (tmp_path / "again").mkdir()
        proxy.stall = True
        for action in (
            lambda: bounded.log_artifact(str(tmp_path / "big.bin")),
            lambda: bounded.download_artifacts("d1", str(tmp_path / "again")),
        ):
            started = time.monotonic()
            with pytest.raises(OSError):
                action()
            assert time.monotonic() - started < 30
    finally:
        proxy.stall = False
        proxy.stop()


PART = settings.S3_MIN_PART
PARTS = 7
"""A file of 6 full parts and a short last one."""


def _large(tmp_path: Path) -> tuple[Path, bytes]:
    data = random_bytes((PARTS - 1) * PART + 4321, seed=11)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    return source, data


CHECKSUMS = {
    "content-md5": ({}, "content-md5"),
    "crc32c": ({"AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported"}, "x-amz-checksum-crc32c"),
}
"""How parts are checked: ``Content-MD5`` on a store not known to take S3's flexible checksums (the
default off AWS), CRC32C where botocore's variable says it does; the header each part then carries."""


def _parts_store(
    seaweedfs_server: SeaweedFS,
    proxy: RequestCountingProxy | FaultyProxy,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> artifact_fs.ArtifactStore:
    return _store(
        seaweedfs_server,
        proxy,
        environ={"MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(PART), **(environ or {})},
        max_concurrency=3,
        **options,
    )


def _checked_parts(proxy: RequestCountingProxy, kind: str, header: str) -> int:
    """How many ``kind`` requests carried ``header``, after checking none carried the other check."""
    others = {other for _, other in CHECKSUMS.values()} - {header}
    assert not [name for (seen, name), _ in proxy.headers.items() if seen == kind and name in others]
    return proxy.headers[(kind, header)]


def _object(seaweedfs_server: SeaweedFS, store: artifact_fs.ArtifactStore, name: str) -> bytes:
    key = f"{str(store.uri).split('/', 3)[3]}/{name}"
    body: bytes = seaweedfs_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def _pending_uploads(seaweedfs_server: SeaweedFS, store: artifact_fs.ArtifactStore) -> list[Any]:
    prefix = str(store.uri).split("/", 3)[3]
    answer = seaweedfs_server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return list(answer.get("Uploads", []))


@pytest.mark.parametrize("checksum", CHECKSUMS)
def test_a_large_file_goes_in_presigned_parts_read_in_threads_at_most_max_concurrency_at_once(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path, checksum: str
) -> None:
    """The upload is created and completed through the SDK (its arguments and metadata), and each
    part is one presigned PUT carrying its checksum, at most ``max_concurrency`` in flight."""
    environ, header = CHECKSUMS[checksum]
    source, data = _large(tmp_path)
    store = _parts_store(seaweedfs_server, proxy, environ)
    store.fs.pipe_file("first.txt", b"presigned requests go one at a time until one is answered")
    proxy.reset()
    proxy.gather("url-upload-part", 2)

    store.log_artifact(str(source))

    assert _checked_parts(proxy, "url-upload-part", header) == PARTS
    peak, kinds = proxy.peak_in_flight["url-upload-part"], proxy.reset()
    assert kinds == {
        "create-multipart": 1,
        "url-upload-part": PARTS,
        "complete-multipart": 1,
        "url-digest-put": 1,
    }, kinds
    assert 2 <= peak <= 3, f"{peak} parts in flight at most, with max_concurrency=3"
    assert _object(seaweedfs_server, store, "weights.bin") == data
    (tmp_path / "out").mkdir()
    store.download_artifacts("weights.bin", str(tmp_path / "out"))
    assert (tmp_path / "out" / "weights.bin").read_bytes() == data


@pytest.mark.parametrize("checksum", CHECKSUMS)
@pytest.mark.parametrize("payer", [False, True], ids=["presigned", "requester-pays"])
def test_a_streamed_write_sends_presigned_parts_unless_its_arguments_must_ride(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, payer: bool, checksum: str
) -> None:
    """A file written piece by piece (the server's proxied PUTs) sends each full part as it fills:
    presigned with its checksum (no SigV4 hash of the payload on the server's CPU), through the
    SDK when an argument every request carries (requester pays) must go with it."""
    environ, header = CHECKSUMS[checksum]
    data = random_bytes((PARTS - 1) * PART + 4321, seed=12)
    options = {"s3_additional_kwargs": {"RequestPayer": "requester"}} if payer else {}
    store = _parts_store(seaweedfs_server, proxy, environ, **options)
    proxy.reset()

    with store.open("streamed.bin", "wb") as handle:
        for start in range(0, len(data), PART // 3):
            handle.write(data[start : start + PART // 3])

    sent = "upload-part" if payer else "url-upload-part"
    assert _checked_parts(proxy, sent, header) == PARTS
    kinds = proxy.reset()
    assert kinds["create-multipart"] == 1 and kinds["complete-multipart"] == 1, kinds
    assert kinds[sent] == PARTS and kinds["url-upload-part" if payer else "upload-part"] == 0, kinds
    assert _object(seaweedfs_server, store, "streamed.bin") == data


@pytest.mark.parametrize("checksum", CHECKSUMS)
def test_a_part_whose_bytes_do_not_match_its_checksum_is_refused_by_the_store(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, checksum: str
) -> None:
    """The checksum a part carries is the store's check of the bytes it received: a part sent
    with another part's checksum fails, presigned and then again through the SDK, and nothing of
    it is kept; the same part with its own checksum goes, presigned (a BadDigest refuses that
    body, not the presigned path)."""
    environ, _ = CHECKSUMS[checksum]
    store = _parts_store(seaweedfs_server, proxy, environ)
    fs, root = store.fs.fs, store.fs.path  # the S3 filesystem under the store's root
    bucket, key, _ = fs.split_path(f"{root}/checked.bin")
    data, other = random_bytes(PART, seed=31), random_bytes(PART, seed=32)
    algorithm = sync(fs.loop, s3_upload.part_algorithm, fs)
    assert algorithm == ("CRC32C" if environ else None)
    created = fs.call_s3(
        "create_multipart_upload", Bucket=bucket, Key=key, **s3_upload.creation_arguments(algorithm)
    )
    upload = created["UploadId"]

    def send(check: s3_upload.PartCheck) -> dict[str, Any]:
        sent: dict[str, Any] = sync(
            fs.loop, s3_upload.send_part, fs, bucket, key, data, upload_id=upload, number=1, check=check
        )
        return sent

    try:
        proxy.reset()
        with pytest.raises(OSError, match="BadDigest|did not match"):
            send(s3_upload.part_check(other, algorithm))
        kinds = proxy.reset()
        assert kinds == {"url-upload-part": 1, "upload-part": 1}, kinds  # refused both ways
        assert not fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload).get("Parts")
        proxy.reset()
        entry = send(s3_upload.part_check(data, algorithm))
        assert proxy.reset() == {"url-upload-part": 1}  # one damaged part leaves the path on
        fs.call_s3(
            "complete_multipart_upload",
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [entry]},
        )
    except BaseException:
        fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload)
        raise
    assert fs.cat_file(f"{root}/checked.bin") == data


def test_a_part_the_store_refuses_presigned_goes_through_the_sdk(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse_presigned_urls(monkeypatch)
    source, data = _large(tmp_path)
    store = _parts_store(seaweedfs_server, proxy)
    proxy.reset()

    store.log_artifact(str(source))

    kinds = proxy.reset()
    assert kinds["url-upload-part"] == 1 and kinds["upload-part"] == PARTS, kinds  # the first, refused, again
    assert _object(seaweedfs_server, store, "weights.bin") == data


def test_a_failed_part_aborts_the_upload_and_leaves_nothing(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file shrinks under the upload (another process truncates it): the part that finds it
    short fails the upload, the parts in flight are cancelled and the upload is aborted."""
    read_part = s3_upload._read_part
    source, _ = _large(tmp_path)

    def truncated(fd: int, offset: int, length: int, algorithm: str | None) -> tuple[bytes, Any]:
        if offset >= 3 * PART:
            os.truncate(source, 3 * PART + 10)
        return read_part(fd, offset, length, algorithm)

    monkeypatch.setattr(s3_upload, "_read_part", truncated)
    store = _parts_store(seaweedfs_server, proxy)
    proxy.reset()

    with pytest.raises(OSError, match="changed while it was uploaded"):
        store.log_artifact(str(source))

    kinds = proxy.reset()
    assert kinds["create-multipart"] == 1 and kinds["delete"] == 1 and "complete-multipart" not in kinds, (
        kinds
    )
    assert _pending_uploads(seaweedfs_server, store) == []
    assert store.list_artifacts() == []


def test_reads_of_an_open_file_are_presigned_ranges_pinned_to_the_version_it_opened(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy
) -> None:
    """``fs.open(..., "rb")`` asks one presigned HEAD and reads presigned ranges with ``If-Match``:
    an object replaced under an open file fails the next read instead of mixing two versions."""
    store = _store(seaweedfs_server, proxy)
    fs, root = _filesystem(seaweedfs_server, proxy, store)
    first, second = random_bytes(300_000, seed=21), random_bytes(300_000, seed=22)
    fs.pipe_file(f"{root}/model.bin", first)
    proxy.reset()

    with fs.open(f"{root}/model.bin", "rb", block_size=65536, cache_type="none") as handle:
        assert handle.read(1000) == first[:1000]
        assert handle.read(1000) == first[1000:2000]
        kinds = proxy.reset()
        assert kinds == {"url-head": 1, "url-get": 2}, kinds
        fs.pipe_file(f"{root}/model.bin", second)
        with pytest.raises(OSError, match="pre-conditions"):
            handle.read(1000)


def test_an_open_right_after_a_head_of_the_object_takes_its_answer_and_pins_its_version(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow asks ``isfile`` before each open: the open takes that HEAD's answer (once, within
    ``object_store.OPEN_AFTER_HEAD``) instead of asking again, and pins the ETag it names. A write through the
    filesystem in between, or an older answer, makes the open ask; an object another writer replaced
    in between fails the read (as one replaced after the open's own HEAD does), never mixes."""
    options = {
        "endpoint_url": proxy.url,
        "key": seaweedfs_server.access_key,
        "secret": seaweedfs_server.secret_key,
        "skip_instance_cache": True,
    }
    uri = str(_store(seaweedfs_server, proxy).uri)
    fs, root = artifact_fs.url_to_fs(uri, **options)
    other, _ = artifact_fs.url_to_fs(uri, **options)
    assert other is not fs
    path = f"{root}/model.bin"
    first, second = random_bytes(200_000, seed=31), random_bytes(200_000, seed=32)
    fs.pipe_file(path, first)
    proxy.reset()

    assert fs.isfile(path)
    with fs.open(path, "rb") as handle:
        assert handle.read() == first
    assert proxy.reset() == {"url-head": 1, "url-get": 1}
    with fs.open(path, "rb") as handle:  # the answer is taken once: this open asks its own
        assert handle.read(10) == first[:10]
    assert proxy.reset()["url-head"] == 1

    assert fs.isfile(path)
    fs.pipe_file(path, second)  # through this filesystem: the kept answer is dropped
    with fs.open(path, "rb") as handle:
        assert handle.read() == second

    assert fs.isfile(path)
    other.pipe_file(path, first)  # another writer, between the HEAD and the open
    with fs.open(path, "rb") as handle, pytest.raises(OSError, match="pre-conditions"):
        handle.read()

    monkeypatch.setattr(object_store, "OPEN_AFTER_HEAD", 0.0)
    assert fs.isfile(path)
    proxy.reset()
    with fs.open(path, "rb") as handle:  # an answer older than the window: the open asks
        assert handle.read() == first
    assert proxy.reset() == {"url-head": 1, "url-get": 1}


def test_a_large_read_is_one_get_written_into_the_callers_memory_or_a_pyarrow_buffer(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy
) -> None:
    """A read of a block or more is one ranged GET, its body written as it arrives into the
    caller's buffer (``readinto``) or, for pyarrow's ``PythonFile``, into a buffer of pyarrow's
    pool (``read_buffer``), with no joined copy; a short read still takes a block through the cache."""
    import pyarrow as pa

    store = _store(seaweedfs_server, proxy)
    fs, root = _filesystem(seaweedfs_server, proxy, store)
    path = f"{root}/table.parquet"
    data = random_bytes(3 * 1024 * 1024 + 5, seed=41)
    fs.pipe_file(path, data)
    proxy.reset()
    with fs.open(path, "rb") as handle:
        block = handle.blocksize
        into = bytearray(2 * block)
        handle.seek(100)
        assert handle.readinto(into) == len(into)
        assert into == data[100 : 100 + 2 * block]
        assert handle.tell() == 100 + 2 * block

        chunk = handle.read_buffer(block + 7)
        assert isinstance(chunk, pa.Buffer)
        assert chunk.to_pybytes() == data[100 + 2 * block : 100 + 3 * block + 7]
        rest = handle.read_buffer(len(data))  # clipped to the file
        assert isinstance(rest, pa.Buffer)
        assert rest.to_pybytes() == data[100 + 3 * block + 7 :]
        assert handle.read_buffer(10) == b""

        handle.seek(0)
        head = handle.read_buffer(10)  # short: a block through the cache, then held
        assert isinstance(head, bytes)
        assert head + handle.read_buffer(20) == data[:30]
    received = proxy.received["url-get"]
    counts = proxy.reset()
    assert counts == {"url-head": 1, "url-get": 4}, counts
    assert received == 2 * block + block + 7 + len(rest) + block


def test_a_large_read_cut_mid_body_is_read_again_never_short(seaweedfs_server: SeaweedFS) -> None:
    """A body cut mid-way while it is written into the caller's memory leaves nothing half-read:
    the read is asked again (through the SDK, whose retries apply) and returns every byte."""
    import pyarrow as pa

    faulty = FaultyProxy(int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), reset_within=2 * 1024 * 1024)
    try:
        fs, root = _filesystem(seaweedfs_server, faulty, _store(seaweedfs_server, faulty))
        path = f"{root}/weights.bin"
        data = random_bytes(2 * 1024 * 1024, seed=42)
        fs.pipe_file(path, data)
        faulty.reset_rate = 0.3
        for round_ in range(12):
            with fs.open(path, "rb") as handle:
                start = 1000 * round_
                handle.seek(start)
                if round_ % 2:
                    into = bytearray(len(data) - start)
                    assert handle.readinto(into) == len(into)
                    assert into == data[start:]
                else:
                    chunk = handle.read_buffer(len(data))
                    assert pa.py_buffer(chunk).to_pybytes() == data[start:]
        assert faulty.resets >= 1, faulty.exchanges
    finally:
        faulty.stop()


def test_pandas_writes_through_a_file_object_as_one_presigned_put_read_back_by_boto3(
    seaweedfs_server: SeaweedFS, proxy: RequestCountingProxy
) -> None:
    """``DataFrame.to_parquet`` on the filesystem writes through ``fs.open(path, "wb")``: a file
    that fits one request is one presigned PUT; boto3 reads the object back on its own."""
    import io

    import pandas as pd

    store = _store(seaweedfs_server, proxy)
    fs, root = _filesystem(seaweedfs_server, proxy, store)
    frame = pd.DataFrame({"a": range(5000), "b": [f"row {i}" for i in range(5000)]})
    proxy.reset()

    frame.to_parquet(f"{root}/table.parquet", filesystem=fs)

    kinds = proxy.reset()
    assert kinds == {"url-put": 1}, kinds
    written = _object(seaweedfs_server, store, "table.parquet")
    assert pd.read_parquet(io.BytesIO(written)).equals(frame)
