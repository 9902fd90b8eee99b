"""``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` for SFTP: a stalled server ends the operation.

asyncssh has no per-request timeout, so the bound is the SSH connection's keepalive: when the
server answers nothing for about the transfer timeout, asyncssh drops the connection and every
pending SFTP request fails; :class:`ConnectionWatch` remembers why, so the backend can raise the
``TimeoutError`` that MLflow documents instead of a bare "connection lost". Any data arriving
restarts the wait, so a slow transfer that keeps moving is never cut, unless its link needs more
than about the timeout to deliver a keepalive queued behind the SSH window (~2 MiB) of unsent data.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import asyncssh

KEEPALIVE_PROBES = 3
"""Keepalives asyncssh sends unanswered before it drops the connection (its default)."""
VARIABLE = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"


def keepalive_arguments(transfer_timeout: float | None) -> dict[str, Any]:
    """asyncssh options that drop a connection once the server stays silent for ``transfer_timeout``.

    asyncssh probes after ``keepalive_interval`` seconds without data (any data restarts the
    interval) and gives up after ``KEEPALIVE_PROBES + 1`` intervals with no answer.
    """
    if transfer_timeout is None:
        return {}
    interval = transfer_timeout / (KEEPALIVE_PROBES + 1)
    return {"keepalive_interval": interval, "keepalive_count_max": KEEPALIVE_PROBES}


class ConnectionWatch(asyncssh.SSHClient):
    """The connection's client object (``client_factory``): remembers how the connection ended."""

    def __init__(self) -> None:
        self.lost: Exception | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc

    @property
    def stalled(self) -> bool:
        """The server went silent for the transfer timeout (asyncssh's keepalive gave up)."""
        return isinstance(self.lost, asyncssh.ConnectionLost) and "keepalive" in self.lost.reason


def stall_error(action: str, path: Any, host: str, timeout: float | None) -> TimeoutError:
    """The error a stalled operation raises: what stalled, where, and which variable bounds it."""
    error = TimeoutError(
        errno.ETIMEDOUT, f"SFTP {action} {path!r} stalled: {host} sent nothing for {timeout} s ({VARIABLE})"
    )
    error.filename = path if isinstance(path, str) else None
    return error


PARALLEL_IO_TASK = "_SFTPParallelIO._start_task"
"""asyncssh's per-block task of a parallel read or write (``put_file``, ``get_file``, a large write)."""


def quiet_abandoned_block_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Keep a lost connection's other block tasks from printing "Task exception was never retrieved".

    asyncssh's parallel I/O (``_SFTPParallelIO.iter``) cancels and gathers the other block tasks
    after an ``OSError`` or ``SFTPError``, but not after ``ConnectionLost`` (how a stall ends), so
    each one's identical error is printed when it is collected; the caller has already received
    it as a ``TimeoutError``. Only that one case is dropped; everything else reaches the handler
    that was installed before. Idempotent per loop.
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_sftp_block_tasks", False):
        return

    def handler(event_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("task") or context.get("future")  # a collected task is named "future"
        coroutine = task.get_coro() if isinstance(task, asyncio.Task) else None
        if isinstance(context.get("exception"), asyncssh.ConnectionLost) and (
            getattr(coroutine, "__qualname__", "") == PARALLEL_IO_TASK
        ):
            return
        if previous is not None:
            previous(event_loop, context)
        else:
            event_loop.default_exception_handler(context)

    handler.quiets_sftp_block_tasks = True  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.set_exception_handler, handler)
