"""fsspec buffered files that never publish a partial artifact."""

from __future__ import annotations

from typing import Any

from fsspec.spec import AbstractBufferedFile


class DiscardOnError(AbstractBufferedFile):
    """Mixin: a ``with`` block that fails discards the upload instead of finalising it.

    fsspec's ``__exit__`` closes, and so commits, even on an exception. Object stores publish an
    object only when the upload is finalised (Azure's block list, GCS's last resumable chunk), so
    discarding leaves nothing visible. Put it before the store's file class in the bases.
    """

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is not None and self.writable() and not self.closed:  # type: ignore[has-type]
            self.discard()
            self.buffer = None
            self.closed = True
            return
        self.close()
