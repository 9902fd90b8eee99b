"""The S3 transfer knobs of issue #13: range size of downloads, and timestamps parsed without dateutil."""

from __future__ import annotations

import datetime

import botocore.utils
import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp

from artifact_fs import uris
from artifact_fs.backends import s3_download
from artifact_fs.backends.s3_options import options, parse_timestamp
from artifact_fs.backends.s3_parts import parts_in_flight
from artifact_fs.policy import DOWNLOAD_PART_SIZE

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
