"""Many small files in one request: ``POST {prefix}/batch/download`` and ``POST {prefix}/batch/upload``.

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

``POST {prefix}/batch/upload`` is the other way: the body is a tar stream of small files (the same
limits), each entry named by the artifact path it is stored at and carrying, in its pax header, the
digest record of its bytes (``ARTIFACTFS.digest``, as a PUT's ``Content-Digest``).

- Each entry is stored as a PUT of its bytes would be: atomically where the store allows, its
  digests checked before the commit (a mismatch stores nothing), its record kept (and carried in
  the object's metadata where the store carries one). On an async store (S3, GCS, Azure) as a
  coroutine on the store's loop (:meth:`~artifact_fs.store.ArtifactStore.awrite_whole`), elsewhere
  as a PUT's whole body in a thread (:class:`~artifact_fs.server.transfer._Upload`);
  :data:`CONCURRENCY` at a time, so memory stays bounded by ``CONCURRENCY x MAX_FILE_SIZE``.
- The answer is ``200`` with ``{"files": [{"path", "digest"}], "failed": [{"path", "error_code",
  "message"}]}``: what was stored (with the record kept for it) and what was not, and why (an
  unsafe or repeated name, not a regular file, too large, a digest that does not match, the store's
  error). An entry is stored whole or not at all. The client PUTs every file it sent that is not in
  ``files``, one by one, so its error is reported as before.
- A body that is not a tar archive, or ends inside an entry's header or bytes, is a ``400``; the
  entries read whole before that point are stored. (A cut inside a later entry's header reads, as
  in every tar reader, as the archive's end: the answer lists what was stored.) More than
  :data:`MAX_FILES` entries is a ``400`` too, from the first one over.

``server-info`` advertises both routes and their limits under ``artifact_fs`` (:func:`advertised`);
MLflow's clients ignore that key, and artifact_fs's client uses the routes only where advertised.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import posixpath
import tarfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from anyio import from_thread
from starlette.concurrency import run_in_threadpool

from artifact_fs import errors, integrity, settings
from artifact_fs.server import safety
from artifact_fs.server.transfer import InFlightUploads, _Upload, checkable, file_state, read_whole
from artifact_fs.store import ArtifactStore
from artifact_fs.tar_batch import DIGEST_KEY, END_OF_ARCHIVE, ETAG_KEY
from artifact_fs.tar_batch import entry as tar_entry

logger = logging.getLogger("artifact_fs.server")

MAX_FILES = 1000
"""Files one request may name."""
MAX_FILE_SIZE = 1 * settings.MIB
"""The largest file sent in a batch; larger files come as ordinary (ranged) GETs."""
CONCURRENCY = 16
"""Files read from the store at once for one batch."""
PATH = "batch/download"
"""The route, under MLflow's artifact prefixes (``/api/2.0/mlflow-artifacts/batch/download``)."""
UPLOAD_PATH = "batch/upload"


def advertised() -> dict[str, Any]:
    """What ``server-info`` says of the routes (``artifact_fs.batch_download``, ``batch_upload``)."""
    limits = {"max_files": MAX_FILES, "max_file_size": MAX_FILE_SIZE}
    return {"batch_download": {"path": PATH, **limits}, "batch_upload": {"path": UPLOAD_PATH, **limits}}


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
    """One tar entry of the version ``info`` describes: its ETag and record in the pax header."""
    headers = {ETAG_KEY: file_state(info).etag}
    if isinstance(info.get("digest"), str):
        headers[DIGEST_KEY] = info["digest"]
    mtime = info.get("mtime")
    return tar_entry(path, data, headers, int(mtime) if isinstance(mtime, int | float) else 0)


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


async def _read_on_loop(store: ArtifactStore, path: str) -> tuple[bytes, dict[str, Any]] | None:
    """:func:`read_file` as one GET on the store's own loop (:meth:`ArtifactStore.aread_small`)."""
    try:
        return await store.aread_small(path, MAX_FILE_SIZE)
    except integrity.DigestMismatchError as exc:  # never sent: the file's own GET reports it
        logger.warning("batch: %r left to its own GET: %s", path, exc)
    except OSError as exc:
        logger.debug("batch: %r left to its own GET: %s", path, exc)
    return None


def _reader(store: ArtifactStore) -> Callable[[str], Awaitable[tuple[bytes, dict[str, Any]] | None]]:
    """How a batch reads a file: a coroutine on the store's loop where the store reads a small file
    in one GET (S3: no HEAD first, no thread), else :func:`read_file` in a worker thread."""
    loop = store.backend_loop
    if loop is not None and store.reads_small_on_loop:

        def on_loop(path: str) -> Awaitable[tuple[bytes, dict[str, Any]] | None]:
            return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_read_on_loop(store, path), loop))

        return on_loop

    def in_thread(path: str) -> Awaitable[tuple[bytes, dict[str, Any]] | None]:
        return run_in_threadpool(read_file, store, path)

    return in_thread


async def tar_stream(store: ArtifactStore, paths: list[str]) -> AsyncIterator[bytes]:
    """The tar archive of ``paths``, :data:`CONCURRENCY` reads in flight, entries as reads finish."""
    pending: set[asyncio.Future[tuple[bytes, dict[str, Any]] | None]] = set()
    waiting = iter(paths)
    names: dict[asyncio.Future[Any], str] = {}
    read = _reader(store)
    try:
        while True:
            for path in waiting:
                started = asyncio.ensure_future(read(path))
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


# -- uploads ----------------------------------------------------------------------------------------
class BodyReader(io.RawIOBase):
    """The request body as a blocking file for ``tarfile``, read from a worker thread: each read
    takes the next chunk of the async stream on the event loop (``anyio.from_thread``)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        return await anext(self._chunks)

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._ended:
            try:
                self._buffer = from_thread.run(self._next)
            except StopAsyncIteration:
                self._ended = True
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


class Unpacked:
    """What one batch upload stored and what it did not (the answer's ``files`` and ``failed``)."""

    def __init__(self) -> None:
        self.files: list[dict[str, str | None]] = []
        self.failed: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def stored(self, path: str, record: integrity.Record | None) -> None:
        with self._lock:
            self.files.append({"path": path, "digest": record.header() if record is not None else None})

    def refused(self, path: str, exc: BaseException) -> None:
        if isinstance(exc, integrity.DigestMismatchError):
            code = "INVALID_PARAMETER_VALUE"  # the client's bytes do not match its digests: nothing stored
        else:
            code = errors.mlflow_error_code(exc)
            if code == "INTERNAL_ERROR":
                logger.warning("batch upload of %r failed: %s", path, exc, exc_info=exc)
        with self._lock:
            self.failed.append({"path": path, "error_code": code, "message": str(exc) or type(exc).__name__})

    def answer(self) -> dict[str, Any]:
        return {"files": self.files, "failed": self.failed}


def _entry_digests(member: tarfile.TarInfo) -> tuple[integrity.Digest, ...]:
    """The digests an entry's bytes must match (its pax ``ARTIFACTFS.digest``); ``ValueError`` if
    malformed."""
    field = member.pax_headers.get(DIGEST_KEY)
    if not field:
        return ()
    digests = integrity.parse_field(field)
    return tuple(digest for algorithm, digest in digests.items() if algorithm in integrity.PREFERENCE)


def unpack(
    store: ArtifactStore,
    body: io.RawIOBase,
    uploads: InFlightUploads | None,
    refresh: Callable[[str], object],
) -> Unpacked:
    """Store each entry of the tar stream ``body`` (in a worker thread), :data:`CONCURRENCY` at once.

    ``tarfile.ReadError`` when the body is not a tar archive or ends inside one, ``ValueError`` past
    :data:`MAX_FILES` entries; the entries read whole before that are stored (and their directories'
    cached listings dropped) all the same.
    """
    result = Unpacked()
    slots = threading.BoundedSemaphore(CONCURRENCY)
    seen: set[str] = set()
    writes: list[Future[Any]] = []
    loop = store.backend_loop

    def settle(path: str, write: Future[Any]) -> None:
        try:
            record = write.result()
        except Exception as exc:  # noqa: BLE001 - each entry's failure is reported in the answer
            result.refused(path, exc)
        else:
            result.stored(path, record)
        finally:
            slots.release()

    def whole(path: str, data: bytes, expected: tuple[integrity.Digest, ...]) -> integrity.Record | None:
        return _Upload(store, path, expected, uploads).whole([data], None).digest

    try:
        with (
            ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="artifact-fs-batch-upload") as pool,
            tarfile.open(fileobj=io.BufferedReader(body, 256 * settings.KIB), mode="r|") as archive,
        ):
            for count, member in enumerate(archive, 1):
                if count > MAX_FILES:  # the request as a whole is refused (400); what went before stays
                    raise ValueError(f"a batch holds at most {MAX_FILES} files")
                name = member.name
                try:
                    path = safety.file_path(name)
                    if not member.isreg():
                        raise ValueError("only regular files can be uploaded in a batch")
                    if member.size > MAX_FILE_SIZE:
                        raise ValueError(f"files over {MAX_FILE_SIZE} bytes are uploaded on their own")
                    if path in seen:
                        raise ValueError("the batch holds this file more than once")
                    seen.add(path)
                    expected = _entry_digests(member)
                except ValueError as exc:  # InvalidArtifactPathError included
                    result.refused(name, exc)
                    continue
                source = archive.extractfile(member)
                data = source.read() if source is not None else b""
                slots.acquire()
                if loop is not None:  # a coroutine on the backend's own loop: no thread per file
                    write = asyncio.run_coroutine_threadsafe(store.awrite_whole(path, data, expected), loop)
                else:
                    write = pool.submit(whole, path, data, expected)
                write.add_done_callback(functools.partial(settle, path))
                writes.append(write)
            wait(writes)
    finally:
        for directory in {posixpath.dirname(path) for path in seen}:
            refresh(directory)
    return result
