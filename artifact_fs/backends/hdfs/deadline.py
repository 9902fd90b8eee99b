"""``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` for hdfs-native, whose NameNode calls never time out.

hdfs-native (0.14) bounds only DataNode reads and acknowledgements (``dfs.client.socket-timeout``);
a NameNode that accepts a call and answers nothing holds the caller forever, and a stalled write
ends only after its own retries of ``complete``. So with a transfer timeout each blocking call
(one NameNode call, one chunk read or written, one close) runs in a daemon thread and the caller
waits at most the timeout: a slow transfer that keeps moving is not cut, a silent peer is. The
abandoned call keeps its thread until its connection ends; the filesystem that made it is dropped
from fsspec's cache so the next lookup connects again instead of queueing behind it.

Known cost: after a stalled write, collecting the failed call's objects can hold the collecting
thread (and the GIL) until hdfs-native's own close retries end, about 15 s later.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
VARIABLE = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"


def stall_error(action: str, path: str | None, timeout: float) -> TimeoutError:
    """What a stalled call raises: what stalled, where, and the variable that bounds it."""
    where = f" {path!r}" if path else ""
    error = TimeoutError(
        errno.ETIMEDOUT, f"HDFS {action}{where} stalled: no answer within {timeout:g} s ({VARIABLE})"
    )
    error.filename = path
    return error


def call_within(
    timeout: float | None,
    action: str,
    path: str | None,
    function: Callable[..., T],
    *args: Any,
    on_stall: Callable[[], object] | None = None,
) -> T:
    """``function(*args)``, or ``TimeoutError`` once ``timeout`` seconds pass without its result
    (``on_stall`` runs first: drop what the abandoned call still holds).

    Without a timeout the call runs in the caller's thread, as before.
    """
    if timeout is None:
        return function(*args)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, never lost in the thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name=f"hdfs-{action}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        if on_stall is not None:
            on_stall()
        raise stall_error(action, path, timeout)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value  # type: ignore[no-any-return]


class Bounded:
    """What every bounded hdfs-native object shares: the timeout and what to do on a stall."""

    def __init__(self, timeout: float | None, on_stall: Callable[[], object] | None) -> None:
        self.timeout = timeout
        self.on_stall = on_stall

    def call(self, action: str, path: str | None, function: Callable[..., T], *args: Any) -> T:
        return call_within(self.timeout, action, path, function, *args, on_stall=self.on_stall)

    def iterate(self, action: str, path: str | None, items: Iterator[T]) -> Iterator[T]:
        """``items`` with each step bounded (a listing's pages, a stream's chunks)."""
        end: Any = object()
        while (item := self.call(action, path, next, items, end)) is not end:
            yield item


class BoundedClient(Bounded):
    """An ``hdfs_native.Client`` whose every call returns within the timeout or raises ``TimeoutError``."""

    def __init__(self, client: Any, timeout: float | None, on_stall: Callable[[], object] | None) -> None:
        super().__init__(timeout, on_stall)
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name == "client":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        method = getattr(self.client, name)

        def bounded(*args: Any) -> Any:
            path = args[0] if args and isinstance(args[0], str) else None
            result = self.call(name, path, method, *args)
            if name == "list_status":  # a lazy listing: each page is a NameNode call
                return self.iterate(name, path, result)
            if name == "read":
                return BoundedReader(result, path, self.timeout, self.on_stall)
            if name in {"create", "append"}:
                return BoundedWriter(result, path, self.timeout, self.on_stall)
            return result

        return bounded


class BoundedStream(Bounded):
    """A reader or writer: once a call on it stalls, the next fail at once (the abandoned call
    still holds the stream, and hdfs-native would answer only "Already borrowed")."""

    def __init__(self, timeout: float | None, on_stall: Callable[[], object] | None) -> None:
        super().__init__(timeout, on_stall)
        self.stalled = False

    def call(self, action: str, path: str | None, function: Callable[..., T], *args: Any) -> T:
        if self.stalled and self.timeout is not None:
            raise stall_error(action, path, self.timeout)
        try:
            return super().call(action, path, function, *args)
        except TimeoutError as exc:
            self.stalled = self.stalled or VARIABLE in str(exc)
            raise


class BoundedReader(BoundedStream):
    """An hdfs-native reader whose ranges are read one chunk per bounded call."""

    def __init__(self, reader: Any, path: str | None, timeout: float | None, on_stall: Any) -> None:
        super().__init__(timeout, on_stall)
        self.reader, self.path = reader, path

    def __len__(self) -> int:
        return len(self.reader)

    def read_range(self, offset: int, length: int) -> bytes:
        if self.timeout is None:
            return self.reader.read_range(offset, length)  # type: ignore[no-any-return]
        return b"".join(self.read_range_stream(offset, length))

    def read_range_stream(self, offset: int, length: int) -> Iterator[bytes]:
        return self.iterate("read", self.path, self.reader.read_range_stream(offset, length))


class BoundedWriter(BoundedStream):
    """An hdfs-native writer whose writes are bounded chunk by chunk, and its close as one call."""

    chunk_size = 1024 * 1024

    def __init__(self, writer: Any, path: str | None, timeout: float | None, on_stall: Any) -> None:
        super().__init__(timeout, on_stall)
        self.writer, self.path = writer, path

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for offset in range(0, len(view), self.chunk_size):
            self.call("write", self.path, self.writer.write, view[offset : offset + self.chunk_size])
        return len(view)

    def close(self) -> None:
        self.call("close", self.path, self.writer.close)
