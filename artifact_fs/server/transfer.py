"""Streaming request and response bodies with bounded memory, through the destination's store.

Uploads: request chunks are gathered into batches of ``batch_size`` bytes and written to
``ArtifactStore.open(path, "wb")`` in a worker thread while the next batch is received, so the
server never holds a whole body in memory or in a temp dir (MLflow spools every non-local upload
to disk first). A body that fits one batch (most artifacts) is opened, written and committed in a
single worker-thread call. A failed or aborted upload is abandoned through fsspec's own
``discard`` (s3fs and gcsfs abort the multipart upload), or the partial file is removed, so
nothing is left behind.

Downloads: ``Content-Length``, ``ETag`` and a single HTTP ``Range`` (206, ``Content-Range``; 416 when
unsatisfiable) for every destination, read in ``chunk_size`` pieces from the one handle
``ArtifactStore.open_version`` opened, whose size and ETag the headers carry: a response is one
version, or it is cut short (an object store's pinned read fails when the object changed). A body
of at most one chunk is read by the call that opened the file (:func:`read_whole`).

Digests (:mod:`artifact_fs.integrity`, RFC 9530): a PUT's ``Content-Digest``/``Repr-Digest``/
``Content-MD5`` are checked before the write is committed (:func:`upload_digests`); a whole-file
body is hashed as it is sent and its last chunk withheld when it does not match the recorded digest.

Uploads in flight are registered in :class:`InFlightUploads`, so a graceful shutdown aborts the
multipart uploads the server started rather than leaving them on the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import Headers

from artifact_fs import integrity
from artifact_fs.backends.buffered import discard_write
from artifact_fs.store import ArtifactStore

logger = logging.getLogger("artifact_fs.server")

MIB = 1024 * 1024
UPLOAD_BATCH_SIZE = 8 * MIB
DOWNLOAD_CHUNK_SIZE = 4 * MIB


# -- uploads ----------------------------------------------------------------------------------------
def _abandon(handle: Any, store: ArtifactStore, path: str) -> None:
    """Make sure a failed upload leaves neither a partial artifact nor an open multipart upload."""
    try:
        discard = getattr(handle, "discard", None)
        if discard is not None:
            try:
                # s3fs / gcsfs abort their multipart upload; atomic local files drop their temp file
                discard_write(handle)
            except RuntimeError:
                pass  # fsspec's plain LocalFileOpener cannot discard an autocommitting file
            else:
                return
        handle.close()  # a non-transactional file: close it, then remove what it wrote
        store.delete_artifacts(path)
    except Exception:  # the upload already failed: report that, log this
        logger.warning("could not clean up the aborted upload of %r", path, exc_info=True)


class InFlightUploads:
    """The uploads this process has open, so a graceful shutdown aborts (abandons) them.

    Whoever takes an upload first abandons it: the failed request, or the shutdown, which also
    waits for abandons already running and for one-call uploads being committed (uvicorn cancels
    requests just before the app shuts down, and the process must not exit with an upload half
    aborted or half written).
    """

    def __init__(self) -> None:
        self._open: dict[int, tuple[Any, ArtifactStore, str]] = {}
        self._busy = 0
        self._changed = threading.Condition()

    def add(self, handle: Any, store: ArtifactStore, path: str) -> None:
        with self._changed:
            self._open[id(handle)] = (handle, store, path)

    def finished(self, handle: Any) -> None:
        """The upload completed: nothing to abort."""
        with self._changed:
            self._open.pop(id(handle), None)

    def __len__(self) -> int:
        return len(self._open) + self._busy

    def abandon(self, handle: Any) -> None:
        """Abandon one failed upload, unless the shutdown already took it."""
        with self._changed:
            entry = self._open.pop(id(handle), None)
            if entry is None:
                return
            self._busy += 1
        self._run(entry)

    def abandon_all(self, wait: float = 30.0) -> int:
        """Abandon every upload still open and wait for abandons under way; returns how many it took."""
        with self._changed:
            pending, self._open = list(self._open.values()), {}
            self._busy += len(pending)
        for entry in pending:
            logger.warning("aborting the unfinished upload of %r at shutdown", entry[2])
            self._run(entry)
        with self._changed:
            self._changed.wait_for(lambda: self._busy == 0, timeout=wait)
        return len(pending)

    @contextlib.contextmanager
    def completing(self) -> Iterator[None]:
        """An upload written whole in one worker-thread call: nothing to abort, a shutdown waits for it."""
        with self._changed:
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def _run(self, entry: tuple[Any, ArtifactStore, str]) -> None:
        try:
            _abandon(*entry)
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()


DIGEST_HEADERS = ("Content-Digest", "Repr-Digest")
"""RFC 9530 fields a PUT may carry. The server stores the body as sent (no content coding is
undone), so the content and the representation are the same bytes and both are checked."""


def upload_digests(headers: Headers) -> list[integrity.Digest]:
    """The digests a PUT's body must match: ``Content-Digest``, ``Repr-Digest`` and ``Content-MD5``.

    Every algorithm the server can compute (sha-256, sha-512, md5, crc32c) is checked; others are
    ignored, as RFC 9530 allows. A malformed field, or two values for one algorithm, is the
    client's mistake: ``ValueError`` (a 400).
    """
    found: dict[str, integrity.Digest] = {}
    given: list[tuple[str, integrity.Digest]] = []
    for name in DIGEST_HEADERS:
        value = ", ".join(headers.getlist(name))
        try:
            given += [(name, digest) for digest in integrity.parse_field(value).values()]
        except ValueError as exc:
            raise ValueError(f"malformed {name} header: {exc}") from exc
    try:
        md5 = integrity.content_md5(headers.get("Content-MD5"))
    except ValueError as exc:
        raise ValueError(f"malformed Content-MD5 header (base64 of 16 bytes): {exc}") from exc
    if md5 is not None:
        given.append(("Content-MD5", md5))
    for name, digest in given:
        if digest.algorithm not in integrity.PREFERENCE:
            continue
        known = found.setdefault(digest.algorithm, digest)
        if known.value != digest.value:
            raise ValueError(f"{name} gives another {digest.algorithm} digest than the other headers")
    return list(found.values())


@dataclass(frozen=True)
class Stored:
    """What an upload stored: its size and, when digests are on, its record (SHA-256 and CRC32C)."""

    size: int
    digest: integrity.Record | None = None


class _Upload:
    """One PUT's file, driven from worker threads; whoever fails first abandons it, once.

    ``done`` is set in the thread that committed, so a request cancelled while that thread ran
    (its ``await`` ends only after it) never abandons what it has just stored.
    """

    def __init__(
        self,
        store: ArtifactStore,
        path: str,
        expected: tuple[integrity.Digest, ...],
        uploads: InFlightUploads | None,
    ) -> None:
        self.store, self.path, self.expected, self.uploads = store, path, expected, uploads
        self.handle: Any = None
        self.registered = self.done = False
        self.written = 0

    def _open(self) -> None:
        self.handle = self.store.open(self.path, "wb", expected_digests=self.expected)

    def write(self, chunks: Iterable[bytes]) -> None:
        """Write the request's chunks as received (a batch is never joined: no copy of its bytes)."""
        for data in chunks:
            if data:
                self.handle.write(data)
                self.written += len(data)

    def start(self, first: Iterable[bytes]) -> None:
        """Open, register (a shutdown aborts it from now on) and write the first batch."""
        self._open()
        if self.uploads is not None:
            self.uploads.add(self.handle, self.store, self.path)
            self.registered = True
        self.write(first)

    def finish(self, tail: Iterable[bytes], then: Callable[[], object] | None) -> Stored:
        """Write the last bytes, commit (digests are checked here), then ``then`` (e.g. drop a listing)."""
        self.write(tail)
        self.handle.close()
        self.done = True
        if self.registered and self.uploads is not None:
            self.uploads.finished(self.handle)
        if then is not None:
            then()
        return self._stored()

    def whole(self, body: Iterable[bytes], then: Callable[[], object] | None) -> Stored:
        """A body that fits one batch: open, write, commit and ``then`` in this one thread call.

        It is not registered for a shutdown to abort: no other thread may touch a handle in use
        here, and with the whole body in hand finishing is quicker than aborting. A shutdown waits
        for it instead (:meth:`InFlightUploads.completing`).
        """
        with self.uploads.completing() if self.uploads is not None else contextlib.nullcontext():
            try:
                self._open()
                return self.finish(body, then)
            except BaseException:
                self.abandon()
                raise

    def abandon(self) -> None:
        """Leave nothing behind of a failed upload (at most once; never after its commit)."""
        handle, self.handle = self.handle, None
        if handle is None or self.done:
            return
        if self.registered and self.uploads is not None:
            self.uploads.abandon(handle)
        else:
            _abandon(handle, self.store, self.path)

    def _stored(self) -> Stored:
        record = None
        if isinstance(self.handle, integrity.RecordingWriter):
            computed = self.handle.digests()
            record = integrity.recorded_of(computed)
        return Stored(self.written, record)


async def write_stream(
    store: ArtifactStore,
    path: str,
    chunks: AsyncIterator[bytes],
    batch_size: int = UPLOAD_BATCH_SIZE,
    uploads: InFlightUploads | None = None,
    *,
    expected_digests: Iterable[integrity.Digest] = (),
    then: Callable[[], object] | None = None,
) -> Stored:
    """Write an async byte stream to ``path``; ``then`` runs in the committing thread once stored.

    ``expected_digests`` (the request's ``Content-Digest``) are checked before the write is
    committed: a mismatch is :class:`~artifact_fs.integrity.DigestMismatchError` and nothing is stored.
    The first batch is read before anything is opened: a body that fits it (most artifacts) is
    opened, written and committed in one worker-thread call, not one per step. A larger body's
    batches are written in order, each while the next is received (at most two batches held), so
    hashing and handing parts to the store do not stop the connection's reads.
    """
    upload = _Upload(store, path, tuple(expected_digests), uploads)
    stream = aiter(chunks)
    pending: list[bytes] = []
    size = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in stream:
            pending.append(chunk)
            size += len(chunk)
            if size > batch_size:
                break
        else:
            return await run_in_threadpool(upload.whole, pending, then)
        writing = asyncio.ensure_future(run_in_threadpool(upload.start, pending))
        pending, size = [], 0
        async for chunk in stream:
            pending.append(chunk)
            size += len(chunk)
            if size >= batch_size:
                await writing  # one batch is written while the next is received, in order
                writing = asyncio.ensure_future(run_in_threadpool(upload.write, pending))
                pending, size = [], 0
        await writing
        return await run_in_threadpool(upload.finish, pending, then)
    except BaseException:
        with anyio.CancelScope(shield=True):
            if writing is not None:  # the handle is the writing thread's until it returns
                await asyncio.wait({writing})
                if not writing.cancelled():
                    writing.exception()  # raised above, or superseded by the failure that ends this
            if upload.handle is not None and not upload.done:
                await run_in_threadpool(upload.abandon)
        raise


# -- downloads --------------------------------------------------------------------------------------
class RangeNotSatisfiableError(Exception):
    """The requested byte range lies outside the file (HTTP 416)."""


@dataclass(frozen=True)
class FileState:
    """What a download response needs to know about a file before sending it."""

    size: int
    etag: str


def file_state(info: Mapping[str, Any]) -> FileState:
    """Size and a strong ETag: the store's own ETag when it has one, else one from mtime and size."""
    size = int(info.get("size") or 0)
    for key in ("ETag", "etag", "md5Hash"):
        value = info.get(key)
        if value:
            return FileState(size, '"' + str(value).strip('"').replace('"', "") + '"')
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
    stamp = f"{info.get('ino') or ''}-{modified}-{size}"
    return FileState(size, '"' + hashlib.sha256(stamp.encode()).hexdigest()[:32] + '"')


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (start, inclusive end) a ``Range`` header asks for, or None for the whole file.

    Malformed and multi-range headers are ignored (RFC 9110 lets a server send the whole file);
    a well-formed range that misses the file raises :class:`RangeNotSatisfiableError`.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # suffix range: the last N bytes
            length = int(last)
            if length <= 0 or size == 0:
                raise RangeNotSatisfiableError
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or (last and end < start):
        return None
    if start >= size:
        raise RangeNotSatisfiableError
    return start, min(end, size - 1)


class _BodyCheck:
    """What every piece of a body read from the store passes: none empty before ``length`` bytes
    (the file shrank under us: the response ends short), and with ``expected`` (a whole-file read
    of an artifact with a recorded digest) every piece hashed and the last checked before it is
    sent, so a body that does not match is never delivered complete."""

    def __init__(self, path: str, length: int, expected: integrity.Digest | None) -> None:
        self.path = path
        self.remaining = length
        self.expected = expected
        self.hasher = integrity.Hasher(expected.algorithm) if expected is not None else None

    def take(self, data: bytes) -> bytes:
        if not data or len(data) > self.remaining:
            what = "ended" if not data else "went on"
            raise OSError(f"{self.path!r} {what} {self.remaining} bytes early while it was being sent")
        self.remaining -= len(data)
        if self.hasher is not None:
            self.hasher.update(data)
            if self.remaining <= 0 and self.expected is not None:
                integrity.check(self.path, self.expected, self.hasher.digest())
        return data


def _read_chunks(
    handle: IO[bytes],
    path: str,
    start: int,
    length: int,
    chunk_size: int,
    *,
    expected: integrity.Digest | None = None,
) -> Generator[bytes, None, None]:
    """``length`` bytes of the open ``handle`` from ``start`` in ``chunk_size`` pieces, checked
    (:class:`_BodyCheck`); closes it."""
    check = _BodyCheck(path, length, expected)
    with handle:
        if start:
            handle.seek(start)
        while check.remaining > 0:
            yield check.take(handle.read(min(chunk_size, check.remaining)))


def checkable(info: Mapping[str, Any]) -> integrity.Digest | None:
    """The digest a whole body is checked against as it is sent: the quickest of the record
    ``store.open_version`` put in ``info`` (CRC32C beside SHA-256), if the server can compute it."""
    return integrity.quick_digest(info.get("digest"))


def read_whole(
    handle: IO[bytes], path: str, start: int, length: int, *, expected: integrity.Digest | None = None
) -> bytes:
    """:func:`_read_chunks` as one piece, for a body of at most one chunk read in the thread that
    opened it (a small GET is one worker-thread call); closes ``handle``. A body that does not match
    ``expected`` raises :class:`~artifact_fs.integrity.DigestMismatchError` instead (:func:`cut_short`)."""
    return b"".join(_read_chunks(handle, path, start, length, max(length, 1), expected=expected))


def _report_cut(path: str, exc: BaseException) -> None:
    if isinstance(exc, integrity.DigestMismatchError):
        logger.warning(
            "withheld the end of %r: its stored bytes give %s, not the recorded %s "
            "(changed or damaged in the store)",
            path,
            exc.actual,
            exc.expected,
        )
    elif isinstance(exc, OSError):
        logger.warning("download of %r cut short: %s", path, exc)


async def cut_short(path: str, failure: Exception) -> AsyncIterator[bytes]:
    """The body of a one-chunk response whose read or check failed: the headers go, then the
    connection is cut, as :func:`read_stream` withholds a streamed body's last chunk (clients resume
    with a range, and check the whole)."""
    _report_cut(path, failure)
    raise failure
    yield b""  # pragma: no cover - makes this an async generator


async def read_stream(
    handle: IO[bytes],
    path: str,
    start: int,
    length: int,
    chunk_size: int = DOWNLOAD_CHUNK_SIZE,
    *,
    expected: integrity.Digest | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of :func:`_read_chunks`, each read in a worker thread.

    The file is closed (in a thread, even when the client went away mid-response) when the stream
    ends. A read that fails once the headers are sent can only cut the body short (the client
    sees fewer bytes than ``Content-Length`` and resumes or fails), never send other bytes; so does
    a whole-file body that does not match ``expected``, the digest recorded for it.
    """
    chunks = _read_chunks(handle, path, start, length, chunk_size, expected=expected)
    try:
        async for data in iterate_in_threadpool(chunks):
            yield data
    except OSError as exc:  # DigestMismatchError included
        _report_cut(path, exc)
        raise
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await run_in_threadpool(chunks.close)


READ_AHEAD = 2
"""Batches a streamed answer reads from the store ahead of what it has sent."""

_END = object()


async def _pump(
    batches: AsyncIterator[list[bytes]], slots: asyncio.Semaphore, hand: Callable[[object], None]
) -> None:
    """On the store's loop: hand each batch of ``batches`` over as a slot frees, then the end or the
    failure; the stream is closed however this ends (cancelled when the answer stops)."""
    try:
        async with contextlib.aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                await slots.acquire()
                hand(batch)
    except Exception as exc:  # noqa: BLE001 - the answer raises it; cancelled means it stopped
        hand(exc)
        return
    hand(_END)


async def stream_version(
    batches: AsyncIterator[list[bytes]],
    loop: asyncio.AbstractEventLoop,
    path: str,
    length: int,
    *,
    expected: integrity.Digest | None = None,
) -> AsyncIterator[bytes]:
    """The pieces of one GET the store streams on its own event loop ``loop``
    (:meth:`ArtifactStore.version_stream`), checked as :func:`read_stream`'s chunks are: no worker
    thread, one hand-off per batch, and the store reads :data:`READ_AHEAD` batches ahead while one
    is sent. A store that fails, or an answer that stops (the client went away), ends the other
    side too."""
    check = _BodyCheck(path, length, expected)
    here = asyncio.get_running_loop()
    arrived: asyncio.Queue[object] = asyncio.Queue()
    slots = asyncio.Semaphore(READ_AHEAD)  # used on the store's loop only

    def hand(item: object) -> None:
        here.call_soon_threadsafe(arrived.put_nowait, item)

    pump = asyncio.run_coroutine_threadsafe(_pump(batches, slots, hand), loop)
    try:
        while True:
            item = await arrived.get()
            if item is _END:
                if check.remaining:
                    check.take(b"")  # ended early: cut short
                return
            if isinstance(item, BaseException):
                raise item
            loop.call_soon_threadsafe(slots.release)
            assert isinstance(item, list)
            for piece in item:
                yield check.take(piece)
    except OSError as exc:  # DigestMismatchError included
        _report_cut(path, exc)
        raise
    finally:
        pump.cancel()  # stops the store's GET where it is; a finished one is left as it is
