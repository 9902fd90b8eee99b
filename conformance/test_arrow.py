"""Arrow and pandas read Parquet through the filesystem, fetching only the columns asked for.

pyarrow wraps an fsspec filesystem in ``PyFileSystem(FSSpecHandler(fs))``. The handler here also
counts the bytes pyarrow reads. Files are opened with ``cache_type="none"`` (what pyarrow users
should pass, anchors.md recommendation 17) so bytes read equal bytes fetched from the store.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow.fs import FSSpecHandler, PyFileSystem

import artifact_fs
from conformance.harness import Target

COLUMNS = 8
ROWS = 40_000


class CountingFile(io.RawIOBase):
    """A read-only file that adds every byte it returns to its handler's total."""

    def __init__(self, raw: Any, handler: CountingHandler) -> None:
        self.raw, self.handler = raw, handler

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.raw.seek(offset, whence))

    def tell(self) -> int:
        return int(self.raw.tell())

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.handler.bytes_read += len(data)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


class CountingHandler(FSSpecHandler):  # type: ignore[misc]
    bytes_read = 0

    def open_input_file(self, path: str) -> Any:
        raw = self.fs.open(path, "rb", cache_type="none")
        return pa.PythonFile(CountingFile(raw, self), mode="r")


def wide_table() -> Any:
    return pa.table({f"c{i}": pa.array([float(i * ROWS + r) for r in range(ROWS)]) for i in range(COLUMNS)})


def write_parquet(target: Target) -> tuple[str, int, Any]:
    table = wide_table()
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none", row_group_size=ROWS // 2)
    path = target.path("wide.parquet")
    target.fs.pipe_file(path, buffer.getvalue())
    return path, len(buffer.getvalue()), table


def test_pyarrow_column_subset_reads_far_fewer_bytes(target: Target) -> None:
    path, size, table = write_parquet(target)
    handler = CountingHandler(target.fs)
    subset = pq.read_table(path, filesystem=PyFileSystem(handler), columns=["c3", "c6"])
    assert subset.equals(table.select(["c3", "c6"]))
    assert handler.bytes_read < size / 2, (
        f"read {handler.bytes_read} of {size} bytes for 2 of {COLUMNS} columns"
    )

    full_handler = CountingHandler(target.fs)
    full = pq.read_table(path, filesystem=PyFileSystem(full_handler))
    assert full.equals(table)
    assert full_handler.bytes_read >= size * 0.9


def test_pyarrow_accepts_the_fsspec_filesystem_directly(target: Target) -> None:
    path, _, table = write_parquet(target)
    assert pq.read_table(path, filesystem=target.fs, columns=["c1"]).equals(table.select(["c1"]))


def test_pandas_reads_a_column_subset(target: Target) -> None:
    path, size, table = write_parquet(target)
    handler = CountingHandler(target.fs)
    frame = pd.read_parquet(path, filesystem=PyFileSystem(handler), columns=["c0", "c7"])
    assert frame.equals(table.select(["c0", "c7"]).to_pandas())
    assert handler.bytes_read < size / 2


def test_pandas_reads_a_file_opened_by_artifact_url(target: Target) -> None:
    _, _, table = write_parquet(target)
    url = target.url + "/wide.parquet"
    with artifact_fs.open(url, "rb", **target.backend.storage_options) as f:
        frame = pd.read_parquet(f, columns=["c2"])
    assert frame.equals(table.select(["c2"]).to_pandas())


def test_pyarrow_writes_parquet_through_the_filesystem(target: Target) -> None:
    table = wide_table().slice(0, 1000)
    path = target.path("written", "out.parquet")
    with target.fs.open(path, "wb") as f:
        pq.write_table(table, f)
    assert pq.read_table(path, filesystem=target.fs).equals(table)
