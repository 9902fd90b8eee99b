"""The digest values, records and checksums of artifact_fs.integrity, checked against hashlib and
google-crc32c (the reference implementations), and the recording writer's commit/discard contract."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import random
from pathlib import Path

import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifact_fs import integrity
from artifact_fs.integrity import Digest, Record, RecordingWriter, combined_crc32c, crc32c_combine


def test_a_digest_is_an_rfc_9530_member() -> None:
    value = hashlib.sha256(b"hello").digest()
    digest = Digest("sha-256", value)
    assert digest.header() == f"sha-256=:{base64.b64encode(value).decode()}:"
    assert Digest.parse(digest.header()) == digest
    assert Digest.parse(" SHA-256=:" + base64.b64encode(value).decode() + ": ") == digest


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha-256",
        "sha-256=abc",
        "sha-256=:not base64!:",
        "sha-256=:" + base64.b64encode(b"x").decode() + ":",
    ],
)
def test_malformed_digests_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        Digest.parse(text)


def test_a_field_keeps_every_member_and_ignores_parameters() -> None:
    sha = Digest("sha-256", hashlib.sha256(b"a").digest())
    md5 = Digest("md5", hashlib.md5(b"a").digest())
    parsed = integrity.parse_field(f"{sha.header()};p=1, {md5.header()}")
    assert parsed == {"sha-256": sha, "md5": md5}
    assert integrity.preferred(parsed) == sha
    assert integrity.content_md5(base64.b64encode(md5.value).decode()) == md5


def test_a_record_shows_its_identity_and_checks_its_quickest(tmp_path: Path) -> None:
    local = tmp_path / "f"
    local.write_bytes(b"payload" * 1000)
    record = integrity.file_digests(local)
    assert record.identity == Digest("sha-256", hashlib.sha256(local.read_bytes()).digest())
    assert record.quick == Digest("crc32c", google_crc32c.value(local.read_bytes()).to_bytes(4, "big"))
    assert Record.parse(record.header()) == record
    integrity.check_local_file("f", str(local), record)  # matches: nothing happens
    local.write_bytes(b"payload" * 999 + b"PAYLOAD")
    with pytest.raises(integrity.DigestMismatchError) as raised:
        integrity.check_local_file("f", str(local), record)
    assert raised.value.errno == errno.EIO and "'f'" in str(raised.value)
    assert not local.exists()  # never a damaged file that looks complete


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_crc32c_combine_equals_the_checksum_of_the_concatenation(first: bytes, second: bytes) -> None:
    combined = crc32c_combine(google_crc32c.value(first), google_crc32c.value(second), len(second))
    assert combined == google_crc32c.value(first + second)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=20_000), st.integers(min_value=1, max_value=4096))
def test_parts_combine_into_the_whole_files_crc32c(data: bytes, size: int) -> None:
    parts = [data[offset : offset + size] for offset in range(0, len(data), size)]
    whole = combined_crc32c((integrity.crc32c_of(part), len(part)) for part in parts)
    assert whole == Digest("crc32c", google_crc32c.value(data).to_bytes(4, "big"))


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=1, max_size=20_000),
    st.integers(min_value=1, max_value=4096),
    st.integers(min_value=1, max_value=700),
    st.randoms(use_true_random=False),
)
def test_ranges_hashed_as_they_arrive_give_the_whole_files_crc32c(
    data: bytes, part: int, piece: int, order: random.Random
) -> None:
    """A ranged download's pieces reach ``integrity.ReceivedCrc32c`` interleaved across ranges, each range's
    in its own order; the result is the whole file's CRC-32C."""
    pieces = [
        [
            (start, data[at : min(at + piece, start + part)])
            for at in range(start, min(start + part, len(data)), piece)
        ]
        for start in range(0, len(data), part)
    ]
    received = integrity.ReceivedCrc32c()
    while pieces:
        queue = order.choice(pieces)
        start, chunk = queue.pop(0)
        received.add(start, chunk)
        if not queue:
            pieces.remove(queue)
    assert received.digest() == Digest("crc32c", google_crc32c.value(data).to_bytes(4, "big"))


class Discardable(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.discarded = False

    def discard(self) -> None:
        self.discarded = True
        super().close()


def test_the_recording_writer_commits_and_records_what_passed() -> None:
    committed: list[Record] = []
    target = Discardable()
    with RecordingWriter(target, path="a", on_commit=committed.append) as writer:
        writer.write(b"hello ")
        writer.write(memoryview(b"world"))
    assert target.closed and not target.discarded
    assert committed[0].identity.value == hashlib.sha256(b"hello world").digest()


def test_a_wrong_expected_digest_discards_the_write_before_anything_is_visible() -> None:
    committed: list[Record] = []
    target = Discardable()
    wrong = Digest("sha-256", hashlib.sha256(b"something else").digest())
    writer = RecordingWriter(target, path="a", on_commit=committed.append, expected=[wrong])
    writer.write(b"hello world")
    with pytest.raises(integrity.DigestMismatchError):
        writer.close()
    assert target.discarded and committed == []


def test_a_failed_with_block_discards() -> None:
    target = Discardable()
    with (
        pytest.raises(RuntimeError),
        RecordingWriter(target, path="a", on_commit=lambda record: None) as writer,
    ):
        writer.write(b"partial")
        raise RuntimeError("the producer failed")
    assert target.discarded


RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("path", "record"),
    [
        # MLflow's layout: inside the run's (or logged model's) directory, outside its artifact root.
        (f"/srv/1/{RUN}/artifacts/model.bin", f"/srv/1/{RUN}/.artifact.digests/artifacts/model.bin"),
        (f"/srv/1/{RUN}/artifacts/a/b.txt", f"/srv/1/{RUN}/.artifact.digests/artifacts/a/b.txt"),
        (
            f"/srv/1/models/m-{RUN}/artifacts/MLmodel",
            f"/srv/1/models/m-{RUN}/.artifact.digests/artifacts/MLmodel",
        ),
        # A root named "artifacts" above the run is not the run's: the run's own segment decides.
        (f"/artifacts/1/{RUN}/artifacts/x", f"/artifacts/1/{RUN}/.artifact.digests/artifacts/x"),
        # Anywhere else: beside the file.
        ("/srv/artifacts/z.txt", "/srv/artifacts/.artifact.digests/z.txt"),
        (f"/srv/{RUN[:31]}/artifacts/z.txt", f"/srv/{RUN[:31]}/artifacts/.artifact.digests/z.txt"),
        ("top.txt", ".artifact.digests/top.txt"),
    ],
)
def test_where_a_sidecar_record_lives(path: str, record: str) -> None:
    assert integrity.sidecar_path(path) == record


def test_a_directory_in_mlflows_layout_has_its_records_apart() -> None:
    assert integrity.sidecar_tree(f"/srv/1/{RUN}/artifacts") == f"/srv/1/{RUN}/.artifact.digests/artifacts"
    assert (
        integrity.sidecar_tree(f"/srv/1/{RUN}/artifacts/d") == f"/srv/1/{RUN}/.artifact.digests/artifacts/d"
    )
    assert integrity.sidecar_tree("/srv/reports/d") is None  # its sidecars are inside it
