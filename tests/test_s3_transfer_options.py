"""The S3 transfer knobs of issue #13: range size of downloads, and timestamps parsed without dateutil."""

from __future__ import annotations

import asyncio
import base64
import datetime
import errno
import hashlib
import os
import socket
import threading
import time
from typing import Any

import aiohttp
import botocore.utils
import google_crc32c
import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from fsspec.asyn import sync

from artifact_fs import uris
from artifact_fs.backends import s3_download, s3_small, s3_upload
from artifact_fs.backends.s3 import ArtifactS3FileSystem
from artifact_fs.backends.s3_options import options, parse_timestamp
from artifact_fs.backends.s3_parts import parts_in_flight
from artifact_fs.policy import DOWNLOAD_PART_SIZE, stall_bounded_sockets

URI = uris.parse("s3://bucket/root")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DOWNLOAD_PART_SIZE),
        ({"MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(8 * 1024 * 1024)}, 8 * 1024 * 1024),
        ({"MLFLOW_ENABLE_MULTIPART_DOWNLOAD": "false"}, 0),
    ],
)
def test_download_range_size_follows_mlflow_multipart_download_variables(
    environ: dict[str, str], expected: int
) -> None:
    assert options(URI, environ)["download_part_size"] == expected


def test_an_explicit_download_range_size_wins() -> None:
    environ = {"MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": "1048576"}
    assert options(URI, environ, download_part_size=123)["download_part_size"] == 123


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-30T08:00:01.000Z",
        "2026-11-30T08:00:01Z",
        "Mon, 30 Nov 2026 08:00:01 GMT",
        "1796025601",
        1796025601,
    ],
)
def test_timestamps_parse_as_botocore_parses_them(value: object) -> None:
    ours = parse_timestamp(value)
    assert ours == botocore_parse_timestamp(value)
    assert ours.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("value", ["2026-11-30T08:00:01.000Z", "Mon, 30 Nov 2026 08:00:01 GMT"])
def test_the_two_forms_s3_sends_never_reach_botocores_general_parser(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dateutil's parser (botocore's fallback) costs a fifth of a small request's CPU; "GMT" has a "T"."""

    def general(value: object) -> datetime.datetime:
        raise AssertionError(f"{value!r} went to botocore's parser")

    monkeypatch.setattr(botocore.utils, "parse_timestamp", general)
    assert parse_timestamp(value) == datetime.datetime(2026, 11, 30, 8, 0, 1, tzinfo=datetime.UTC)


def testobject_size_comes_from_content_range_else_content_length() -> None:
    assert s3_download.object_size({"ContentRange": "bytes 0-9/1234", "ContentLength": 10}) == 1234
    assert s3_download.object_size({"ContentLength": 10}) == 10
    assert s3_download.object_size({}) == 0


def test_a_streamed_write_keeps_half_the_concurrency_in_flight() -> None:
    assert parts_in_flight(8) == 4
    assert parts_in_flight(1) == 2


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        ({}, {}, None),
        ({"AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported"}, {}, "when_supported"),
        (
            {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_supported"},
            {"config_kwargs": {"request_checksum_calculation": "when_required"}},
            "when_required",
        ),
    ],
)
def test_botocores_checksum_variable_reaches_the_client_config_and_yields_to_an_explicit_one(
    environ: dict[str, str], overrides: dict[str, Any], expected: str | None
) -> None:
    config = options(URI, environ, **overrides).get("config_kwargs", {})
    assert config.get("request_checksum_calculation") == expected


def test_a_bad_checksum_variable_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="AWS_REQUEST_CHECKSUM_CALCULATION"):
        options(URI, {"AWS_REQUEST_CHECKSUM_CALCULATION": "always"})


@pytest.mark.parametrize(
    ("config", "algorithm", "header"),
    [
        ({}, None, "ContentMD5"),  # a store other than AWS: when_required
        ({"request_checksum_calculation": "when_supported"}, "CRC32C", "ChecksumCRC32C"),
    ],
)
def test_parts_carry_crc32c_where_the_client_sends_flexible_checksums_else_content_md5(
    config: dict[str, str], algorithm: str | None, header: str
) -> None:
    fs = ArtifactS3FileSystem(
        endpoint_url="http://127.0.0.1:9", key="k", secret="s", config_kwargs=config, skip_instance_cache=True
    )
    assert sync(fs.loop, s3_upload.part_algorithm, fs) == algorithm
    assert sync(fs.loop, s3_upload.part_algorithm, fs, {"ChecksumAlgorithm": "SHA256"}) is None
    data = b"123456789"
    name, value = s3_upload.part_check(data, algorithm)
    assert name == header
    expected = google_crc32c.value(data) if algorithm else int.from_bytes(hashlib.md5(data).digest(), "big")
    assert int.from_bytes(base64.b64decode(value), "big") == expected


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")
def test_an_upload_body_nobody_reads_fails_after_the_read_timeout_not_never() -> None:
    """aiohttp's read timeout starts once the body is sent: a peer that stops reading a body larger
    than the socket buffers held the request forever. With the connector's sockets it fails."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    factory = stall_bounded_sockets(1.0)
    assert factory is not None
    assert stall_bounded_sockets(-1) is None and stall_bounded_sockets(None) is None

    async def put() -> float:
        timeout = aiohttp.ClientTimeout(sock_connect=2, sock_read=1)
        connector = aiohttp.TCPConnector(socket_factory=factory)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = time.monotonic()
            with pytest.raises(aiohttp.ClientOSError) as caught:
                await session.put(f"http://127.0.0.1:{listener.getsockname()[1]}/", data=bytes(64 << 20))
            assert caught.value.errno == errno.ETIMEDOUT
            return time.monotonic() - started

    try:
        elapsed = asyncio.run(asyncio.wait_for(put(), 60))
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
    assert elapsed < 30, elapsed


def test_a_body_over_a_piece_is_sent_in_pieces_with_its_length() -> None:
    data = os.urandom(2 * s3_small.STREAMED_PIECE + 5)
    headers: dict[str, str] = {}
    body = s3_small._body(data, headers)

    async def pieces() -> list[memoryview]:
        return [piece async for piece in body]

    sent = asyncio.run(pieces())
    assert headers == {"Content-Length": str(len(data))}  # never chunked: S3 wants the length
    assert [len(piece) for piece in sent] == [s3_small.STREAMED_PIECE, s3_small.STREAMED_PIECE, 5]
    assert all(piece.obj is data for piece in sent)  # views of the part: no copy
    assert b"".join(sent) == data
    small: dict[str, str] = {}
    assert s3_small._body(b"tiny", small) == b"tiny" and small == {}
