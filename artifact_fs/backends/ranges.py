"""``cat_file(start, end)`` with Python slicing semantics on stores that answer HTTP 416.

fsspec's contract is ``data[start:end]``: negative offsets count from the end, and an empty or
past-the-end range is ``b""``. Object stores answer such ranges with 416 (or a reply the SDK cannot
parse), so the range is normalised first and a 416 for a start at or past the end becomes ``b""``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Fetch = Callable[[int | None, int | None], Awaitable[Any]]


def slice_bounds(size: int, start: int | None, end: int | None) -> tuple[int, int]:
    """``data[start:end]`` of a ``size``-byte file as absolute ``(begin, stop)``; empty when stop <= begin."""
    begin, stop, _ = slice(start, end).indices(size)
    return begin, max(begin, stop)


async def cat_slice(
    fs: Any,
    path: str,
    start: int | None,
    end: int | None,
    *,
    fetch: Fetch,
    is_416: Callable[[Exception], bool],
) -> bytes:
    """``fetch(start, end)`` after normalising the range; ``b""`` where the store refuses an empty one.

    ``fs._info`` supplies the size for negative offsets, and proves a file exists before an empty
    range answers ``b""`` (a missing file stays ``FileNotFoundError``).
    """
    if (start is not None and start < 0) or (end is not None and end < 0):
        start, end = slice_bounds((await fs._info(path))["size"], start, end)
    if start is not None and end is not None and start >= end:
        await fs._info(path)
        return b""
    try:
        return bytes(await fetch(start, end))
    except Exception as exc:
        if is_416(exc):
            return b""
        raise
