"""How a streamed S3 write (the server's proxied PUTs) cuts its parts, on fsspec's own buffered file.

:class:`~artifact_fs.backends.s3_parts.ConcurrentParts` splits a write at the end of a part, so each
part is handed over as the buffer's own bytes; the parts must still be equal in size (stores such as
Cloudflare R2 refuse unequal ones), in order, and hold exactly what was written.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

from artifact_fs.backends.s3_parts import ConcurrentParts

PART = 1000


class RecordedParts(ConcurrentParts, AbstractBufferedFile):  # type: ignore[misc]
    """fsspec's buffered file with the mixin; the parts are recorded instead of sent."""

    append_block = False

    def __init__(self) -> None:
        super().__init__(MemoryFileSystem(), "bucket/key", mode="wb", block_size=PART)
        self.mpu: Any = None
        self.parts: list[Any] = []
        self.sent: list[bytes] = []

    def _initiate_upload(self) -> None:
        self.mpu = {"UploadId": "upload"}

    def _submit_part(self, data: bytes) -> None:
        self.sent.append(data)

    def _collect_parts(self, keep: int) -> None:
        pass

    def commit(self) -> None:
        self.committed = True


@pytest.mark.parametrize("piece", [1, 333, 999, 1000, 1001, 4567, 12_345])
def test_parts_are_equal_whatever_the_write_sizes(piece: int) -> None:
    payload = os.urandom(5 * PART + 555)
    file = RecordedParts()
    for start in range(0, len(payload), piece):
        assert file.write(payload[start : start + piece]) == len(payload[start : start + piece])
    assert file.tell() == len(payload)
    file.close()
    assert [len(part) for part in file.sent] == [PART] * 5 + [555]
    assert b"".join(file.sent) == payload
    assert all(type(part) is bytes for part in file.sent)
    assert file.committed


def test_a_part_written_exactly_is_handed_over_without_a_copy() -> None:
    file = RecordedParts()
    file.write(b"a" * 600)
    buffer = file.buffer
    file.write(memoryview(b"b" * 900))  # crosses the end of the part: split there
    assert len(file.sent) == 1
    assert file.sent[0] == b"a" * 600 + b"b" * 400
    assert file.sent[0] is buffer.getvalue()  # the buffer's own bytes: exactly one part, not copied
    file.close()
    assert file.sent[1] == b"b" * 500


def test_a_small_file_stays_one_shot() -> None:
    file = RecordedParts()
    file.write(b"x" * (PART - 1))
    assert file.mpu is None and file.sent == []
