"""Progress of multi-file transfers through fsspec callbacks.

The store reports one total in bytes to the caller's :class:`fsspec.callbacks.Callback`:
``set_size(total_bytes)`` once, then ``relative_update(n)`` as bytes move. Transfers run on a thread
pool, so every update goes through one lock. Backends that report bytes per chunk (s3fs, gcsfs,
adlfs) drive the bar smoothly; those that copy a file in one call (the local filesystem) advance it
by the file's size when the file is done.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback, TqdmCallback

from artifact_fs import settings

BAR_DELAY_SECONDS = 0.5
"""A bar appears only for a transfer that takes longer than this (tqdm's ``delay``)."""


class TransferProgress:
    """Thread-safe fan-in of many files' byte counts into one caller callback."""

    def __init__(self, callback: Callback | None, total_bytes: int) -> None:
        self._callback = callback if callback is not None else DEFAULT_CALLBACK
        self._lock = threading.Lock()
        with self._lock:
            self._callback.set_size(total_bytes)

    def advance(self, nbytes: int) -> None:
        if nbytes:
            with self._lock:
                self._callback.relative_update(nbytes)

    def for_file(self, size: int | None) -> FileProgress:
        """A child callback to pass as ``callback=`` to ``put_file`` / ``get_file``."""
        return FileProgress(self, size)


class FileProgress(Callback):
    """One file's callback: forwards increments to the total and tops up the rest when done."""

    def __init__(self, parent: TransferProgress, size: int | None) -> None:
        super().__init__(size=size)
        self._parent = parent
        self._reported = 0

    def set_size(self, size: int) -> None:  # the total was set once for the whole transfer
        self.size = size

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.value)

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        self._reported += inc
        self._parent.advance(inc)

    def finish(self) -> None:
        """Account for the bytes a backend copied without reporting them."""
        if self.size is not None and self._reported < self.size:
            self._parent.advance(self.size - self._reported)
            self._reported = self.size


def bars_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` (default true), as MLflow reads it."""
    return bool(settings.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get(environ))


def progress_bar(description: str, environ: Mapping[str, str] | None = None) -> Callback:
    """A tqdm byte bar on stderr that appears only for slow transfers, or a no-op when disabled.

    tqdm disables itself when stderr is not a terminal (``disable=None``), so logs stay clean.
    """
    if not bars_enabled(environ):
        return DEFAULT_CALLBACK
    tqdm_kwargs: dict[str, Any] = {
        "desc": description,
        "unit": "B",
        "unit_scale": True,
        "unit_divisor": 1024,
        "delay": BAR_DELAY_SECONDS,
        "leave": False,
        "file": sys.stderr,
        "disable": None,
    }
    return TqdmCallback(tqdm_kwargs=tqdm_kwargs)
