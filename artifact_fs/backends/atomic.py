"""Write beside the target, then rename into place: how local, FTP and SFTP never show a partial file.

MLflow's local store writes ``<dir>/.artifact.uploading.<random>`` and renames it over the target
(PR #23794). The temporary name sits in the target's directory, so the rename stays on one
filesystem and is atomic, and it carries :data:`artifact_fs.paths.RESERVED_PREFIX`, so every
listing (backends, store, server) hides it. A failed or abandoned write removes the temporary; a
killed process leaves it behind, hidden, with the target untouched.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import posixpath
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fsspec import AbstractFileSystem

from artifact_fs.paths import RESERVED_PREFIX

T = TypeVar("T")


def temporary_beside(path: str) -> str:
    """A fresh hidden name in the directory of ``path`` (``/``-separated, as fsspec paths are)."""
    return posixpath.join(posixpath.dirname(path), f"{RESERVED_PREFIX}{uuid.uuid4().hex}")


def is_temporary(path: str) -> bool:
    """Whether ``path`` names a write in progress (never an artifact)."""
    return posixpath.basename(path.rstrip("/")).startswith(RESERVED_PREFIX)


def without_temporaries(entries: Iterable[T]) -> list[T]:
    """Listing entries (names or fsspec detail dicts) other than writes in progress."""
    return [
        entry
        for entry in entries
        if not is_temporary(entry["name"] if isinstance(entry, dict) else str(entry))
    ]


def prepare_write(fs: AbstractFileSystem, path: str, mode: str, protocol: str) -> None:
    """Before a remote atomic write: whole-file modes only, ``xb`` refuses an existing file, parents made.

    Appending cannot be atomic (the temporary starts empty), so ``ab`` is refused, saying why.
    """
    if mode not in {"wb", "xb"}:
        raise ValueError(
            f"{protocol} files open with mode 'rb', 'wb' or 'xb', not {mode!r}: writes are atomic, so "
            "appending is not supported"
        )
    if mode == "xb" and fs.exists(path):
        raise FileExistsError(errno.EEXIST, "already exists", path)
    parent = posixpath.dirname(path)
    if parent not in ("", "/"):
        fs.makedirs(parent, exist_ok=True)


class WriteBeside:
    """One write published in one step: the bytes go to :attr:`temporary`, a rename replaces the target.

    ``rename(temporary, target)`` and ``remove(temporary)`` are the transport's own (``os.replace``,
    FTP ``RNFR``/``RNTO``, SFTP ``posix-rename``). For an async transport they are coroutine
    functions and the ``a``-prefixed methods (or ``async with``) are used. As a context manager it
    gives the temporary name, publishes when the block succeeds and discards when it fails.
    """

    def __init__(self, target: str, rename: Callable[[str, str], Any], remove: Callable[[str], Any]) -> None:
        self.target = target
        self.temporary = temporary_beside(target)
        self.rename = rename
        self.remove = remove
        self.finished = False
        """Published or discarded: nothing more to do."""

    def publish(self) -> None:
        """Rename the temporary over the target; if that fails, remove the temporary and re-raise."""
        if self.finished:
            return
        try:
            self.rename(self.temporary, self.target)
        except BaseException:
            self.discard()
            raise
        self.finished = True

    def discard(self) -> None:
        """Remove the temporary, best effort: a leftover is hidden, the original error matters more."""
        if self.finished:
            return
        self.finished = True
        with contextlib.suppress(Exception):
            self.remove(self.temporary)

    async def apublish(self) -> None:
        """:meth:`publish` for an async transport."""
        if self.finished:
            return
        try:
            await _awaited(self.rename(self.temporary, self.target))
        except BaseException:
            await self.adiscard()
            raise
        self.finished = True

    async def adiscard(self) -> None:
        """:meth:`discard` for an async transport."""
        if self.finished:
            return
        self.finished = True
        with contextlib.suppress(Exception):
            await _awaited(self.remove(self.temporary))

    def __enter__(self) -> str:
        return self.temporary

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()

    async def __aenter__(self) -> str:
        return self.temporary

    async def __aexit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is None:
            await self.apublish()
        else:
            await self.adiscard()


async def _awaited(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


__all__ = [
    "WriteBeside",
    "is_temporary",
    "prepare_write",
    "temporary_beside",
    "without_temporaries",
]
