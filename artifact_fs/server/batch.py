"""Many small files in one response: ``POST {prefix}/batch/download``.

A tree of small files downloaded one GET at a time costs a request and a response per file on both
sides of the server. This route takes the client's list of files (from the one listing it made) and
answers a single POSIX tar stream (pax format) of them, read from the store concurrently.

- Request: ``{"paths": ["dir/a.txt", ...]}``: artifact paths of files, each checked as a GET's path
  is (:func:`~artifact_fs.server.safety.file_path`), at most :data:`MAX_FILES`, no repeats.
- Answer: ``200``, ``application/x-tar``. One regular-file entry per file that could be sent, named by
  its requested path, in the order the reads finish. Each entry's pax header carries the version it
  holds (``ARTIFACTFS.etag``) and, when there is one, its digest record (``ARTIFACTFS.digest``, as
  ``Repr-Digest``); a whole body is checked against that record before its entry is sent.
- A file that cannot be sent whole (missing, a directory, larger than :data:`MAX_FILE_SIZE`,
  unreadable, not matching its record) gets no entry. The client fetches every file it asked for
  and did not receive with an ordinary GET, whose answer says why. Nothing is ever sent in part:
  an entry's bytes are read completely before its header goes.
- At most :data:`CONCURRENCY` files are read at once, so the memory a batch holds is bounded by
  ``CONCURRENCY x MAX_FILE_SIZE``.

``server-info`` advertises the route and its limits under ``artifact_fs`` (:func:`advertised`);
MLflow's clients ignore that key, and artifact_fs's client uses the route only where it is advertised.
"""

from __future__ import annotations

import asyncio
import logging
import tarfile
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from artifact_fs import settings
from artifact_fs.server import safety
from artifact_fs.server.transfer import checkable, file_state, read_whole
from artifact_fs.store import ArtifactStore

logger = logging.getLogger("artifact_fs.server")

MAX_FILES = 1000
"""Files one request may name."""
MAX_FILE_SIZE = 1 * settings.MIB
"""The largest file sent in a batch; larger files come as ordinary (ranged) GETs."""
CONCURRENCY = 16
"""Files read from the store at once for one batch."""
ETAG_KEY = "ARTIFACTFS.etag"
DIGEST_KEY = "ARTIFACTFS.digest"
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = bytes(2 * BLOCK)
PATH = "batch/download"
"""The route, under MLflow's artifact prefixes (``/api/2.0/mlflow-artifacts/batch/download``)."""


def advertised() -> dict[str, Any]:
    """What ``server-info`` says of the route (``artifact_fs.batch_download``)."""
    return {"path": PATH, "max_files": MAX_FILES, "max_file_size": MAX_FILE_SIZE}


def requested_paths(body: dict[str, Any]) -> list[str]:
    """The request's ``paths``: a non-empty list of safe file paths, at most :data:`MAX_FILES`, no repeats.

    Raises ``ValueError`` (a 400) or :class:`~artifact_fs.paths.InvalidArtifactPathError`.
    """
    raw = body.get("paths")
    if not isinstance(raw, list) or not raw:
        raise ValueError("the request body needs 'paths', a non-empty list of artifact file paths")
    if len(raw) > MAX_FILES:
        raise ValueError(f"a batch names at most {MAX_FILES} files, not {len(raw)}")
    checked: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise ValueError("every entry of 'paths' must be a string")
        checked.append(safety.file_path(item))
    if len(set(checked)) != len(checked):
        raise ValueError("'paths' names a file more than once")
    return checked


def entry(path: str, data: bytes, info: dict[str, Any]) -> bytes:
    """One tar entry: its pax header (name, size, version, record) and its padded bytes."""
    member = tarfile.TarInfo(path)
    member.size = len(data)
    member.mode = 0o644
    mtime = info.get("mtime")
    member.mtime = int(mtime) if isinstance(mtime, int | float) else 0
    member.pax_headers = {ETAG_KEY: file_state(info).etag}
    if isinstance(info.get("digest"), str):
        member.pax_headers[DIGEST_KEY] = info["digest"]
    header = member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + bytes(-len(data) % BLOCK)


def read_file(store: ArtifactStore, path: str) -> tuple[bytes, dict[str, Any]] | None:
    """``path``'s whole bytes and the ``info`` of that version, or None when it cannot go in a batch.

    The body is checked against the file's record as a whole GET's is. Any failure is left to the
    client's own GET of the file, which reports it; here it is only logged.
    """
    try:
        handle, info = store.open_version(path, block_size=MAX_FILE_SIZE, cache_type="none")
    except OSError as exc:
        logger.debug("batch: %r left to its own GET: %s", path, exc)
        return None
    size = int(info.get("size") or 0)
    if size > MAX_FILE_SIZE:
        handle.close()
        return None
    try:
        data = read_whole(handle, path, 0, size, expected=checkable(info))
    except OSError as exc:  # DigestMismatchError included: never sent, the GET reports it
        logger.warning("batch: %r left to its own GET: %s", path, exc)
        return None
    return data, info


async def tar_stream(store: ArtifactStore, paths: list[str]) -> AsyncIterator[bytes]:
    """The tar archive of ``paths``, :data:`CONCURRENCY` reads in flight, entries as reads finish."""
    pending: set[asyncio.Future[tuple[bytes, dict[str, Any]] | None]] = set()
    waiting = iter(paths)
    names: dict[asyncio.Future[Any], str] = {}
    try:
        while True:
            for path in waiting:
                started = asyncio.ensure_future(run_in_threadpool(read_file, store, path))
                names[started] = path
                pending.add(started)
                if len(pending) >= CONCURRENCY:
                    break
            if not pending:
                break
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                path = names.pop(finished)
                result = finished.result()
                if result is not None:
                    yield entry(path, *result)
        yield END_OF_ARCHIVE
    finally:
        for unfinished in pending:  # the client went away: the threads finish their reads, nobody waits
            unfinished.cancel()
