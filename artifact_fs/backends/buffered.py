"""Writable files that never publish a partial artifact."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, cast

from fsspec.spec import AbstractBufferedFile


class _Discardable(Protocol):
    """What the mixin needs of a file: fsspec's commit/discard vocabulary."""

    discard_when_dropped: bool

    @property
    def closed(self) -> bool: ...

    def writable(self) -> bool: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class DiscardOnError:
    """Mixin: a ``with`` block that fails discards the write instead of finalising it.

    fsspec's ``__exit__`` closes, and so commits, even on an exception. Object stores publish an
    object only when the upload is finalised (Azure's block list, GCS's last resumable chunk), and
    a write beside its target (local, FTP, SFTP) only when it is renamed into place, so discarding
    leaves nothing visible. Works for fsspec's ``AbstractBufferedFile`` and for ``io``-style files
    (``LocalFileOpener``, sshfs's ``SSHFile``); put it before the file class in the bases.

    ``discard_when_dropped``: a file garbage-collected while still open is discarded too (fsspec's
    and ``io``'s ``__del__`` would close, and so publish, whatever was written so far).
    """

    discard_when_dropped = False

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        file = cast(_Discardable, self)
        if exc_type is not None and _pending(file):
            discard_write(file)
            return
        file.close()

    def __del__(self) -> None:
        if not self.discard_when_dropped:
            finalise = getattr(super(), "__del__", None)
            if finalise is not None:
                finalise()
            return
        file = cast(_Discardable, self)
        with contextlib.suppress(Exception):
            if _pending(file):
                discard_write(file)


def _pending(file: _Discardable) -> bool:
    """A write that has been neither published nor discarded yet."""
    try:
        return file.writable() and not file.closed
    except (AttributeError, ValueError):  # half-initialised, or an io file already closed
        return False


def discard_write(file: Any) -> None:
    """Abandon a write through the file's own ``discard`` (nothing is published), and mark an fsspec
    buffered file closed, which its ``discard`` does not, so neither ``close`` nor ``__del__`` commits."""
    file.discard()
    if isinstance(file, AbstractBufferedFile):  # fsspec's discard leaves the file open
        file.buffer = None
        file.closed = True
