"""Digests of artifacts: what is recorded at upload, where it lives, and how a read is checked.

One idea, used by the store, the server and the CLI (docs/integrity.md):

* **A digest** is an RFC 9530 value, ``sha-256=:<base64>:``. artifact_fs records two per artifact
  (a :class:`Record`): SHA-256, the content identity (2 GB/s with the CPU's SHA extensions), and
  CRC-32C, which downloads check (14 GB/s); ``md5`` and the others are accepted where a store
  computes them itself (GCS's CRC32C and MD5, Azure's Content-MD5) and nothing is recorded.
* **Where it lives** is the backend's choice, through an optional module attribute ``DIGESTS``
  (a :class:`DigestStore`): a local file's extended attribute, an object in the bucket's hidden tree,
  or by default a small file holding the field (:func:`sidecar_path`: for a run's or logged model's
  artifacts ``<id>/.artifact.digests/artifacts/<path>``, outside the artifact root MLflow lists;
  elsewhere ``<dir>/.artifact.digests/<name>``). Every listing hides
  :data:`artifact_fs.paths.DIGEST_DIRECTORY`.
* **When**: uploads hash the bytes they send and record the digest once the artifact is complete;
  whole-file reads hash what they received and compare (:func:`check`). A mismatch is
  :class:`DigestMismatchError` (an ``OSError``, ``EIO``) naming the artifact. Ranged reads are not
  hashed.

``ARTIFACT_FS_DIGESTS=false`` turns recording and checking off (the benchmark's "off" side).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import functools
import hashlib
import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

import google_crc32c
from fsspec import AbstractFileSystem

from artifact_fs import errors, settings
from artifact_fs.backends.buffered import discard_write
from artifact_fs.paths import DIGEST_DIRECTORY

logger = logging.getLogger("artifact_fs.integrity")

ALGORITHM = "sha-256"
"""What artifact_fs records: RFC 9530's ``sha-256``."""
PREFERENCE = ("sha-256", "sha-512", "crc32c", "md5")
"""Which digest a reader checks when several are known: the strongest first."""
QUICK_PREFERENCE = ("crc32c", "sha-256", "sha-512", "md5")
"""Which digest a download checks after the transfer: the fastest first (crc32c 14 GB/s here)."""
READ_CHUNK = 1024 * 1024
SIDECAR_LIMIT = 1024
"""A sidecar holds one header value; anything longer is not ours."""


class DigestMismatchError(OSError):
    """The bytes read do not match the digest recorded for the artifact (``EIO``)."""

    def __init__(self, path: str, expected: Digest, actual: Digest) -> None:
        super().__init__(
            errno.EIO,
            f"{path!r} does not match its recorded digest: expected {expected}, got {actual} "
            "(changed or damaged in the store; 'artifact-fs verify' checks a whole root)",
            path,
        )
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class Digest:
    """One digest: an RFC 9530 algorithm name and the raw digest bytes."""

    algorithm: str
    value: bytes

    def __str__(self) -> str:
        return self.header()

    def header(self) -> str:
        """The RFC 9530 dictionary member: ``sha-256=:<base64>:``."""
        return f"{self.algorithm}=:{base64.b64encode(self.value).decode()}:"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """One ``algorithm=:<base64>:`` member; ``ValueError`` when it is not one."""
        algorithm, separator, rest = text.strip().partition("=")
        algorithm = algorithm.strip().lower()
        rest = rest.strip()
        if not separator or not algorithm or len(rest) < 2 or rest[0] != ":" or rest[-1] != ":":
            raise ValueError(f"not a digest (expected 'algorithm=:base64:'): {text[:100]!r}")
        try:
            value = base64.b64decode(rest[1:-1], validate=True)
        except ValueError as exc:
            raise ValueError(f"the digest value is not base64: {text[:100]!r}") from exc
        if algorithm in DIGEST_SIZES and len(value) != DIGEST_SIZES[algorithm]:
            raise ValueError(f"a {algorithm} digest has {DIGEST_SIZES[algorithm]} bytes, not {len(value)}")
        return cls(algorithm, value)


DIGEST_SIZES = {"sha-256": 32, "sha-512": 64, "md5": 16, "crc32c": 4}


def parse_field(header: str | None) -> dict[str, Digest]:
    """A ``Repr-Digest``/``Content-Digest`` field: every member we can parse, by algorithm.

    Members with parameters or unknown algorithms are kept if well formed; malformed members raise
    ``ValueError`` (a client's mistake, answered with a 400).
    """
    found: dict[str, Digest] = {}
    if not header:
        return found
    for member in header.split(","):
        if member.strip():
            digest = Digest.parse(member.split(";")[0])
            found[digest.algorithm] = digest
    return found


def content_md5(header: str | None) -> Digest | None:
    """``Content-MD5`` (RFC 1864, base64 of 16 bytes) as a digest."""
    if not header:
        return None
    return Digest.parse(f"md5=:{header.strip()}:")


def field(digests: Iterable[Digest]) -> str:
    """The header value carrying ``digests``."""
    return ", ".join(digest.header() for digest in digests)


def preferred(digests: Mapping[str, Digest] | Iterable[Digest]) -> Digest | None:
    """The digest a reader should check: the strongest algorithm we can compute."""
    by_name = dict(digests) if isinstance(digests, Mapping) else {d.algorithm: d for d in digests}
    for algorithm in PREFERENCE:
        if algorithm in by_name:
            return by_name[algorithm]
    return None


@dataclass(frozen=True)
class Record:
    """What is kept for one artifact: its digests, one per algorithm, as one RFC 9530 field.

    artifact_fs records two (:data:`RECORDED`): SHA-256, the content identity that ``Repr-Digest``,
    ``verify`` and ``ls --long`` show, and CRC32C, which a download checks because it is seven
    times faster to compute (docs/integrity.md, "The algorithm, by measurement").
    """

    digests: tuple[Digest, ...]

    def __str__(self) -> str:
        return self.header()

    def header(self) -> str:
        return field(self.digests)

    @classmethod
    def parse(cls, text: str) -> Record:
        """A stored field; ``ValueError`` when it holds no digest."""
        digests = tuple(parse_field(text).values())
        if not digests:
            raise ValueError(f"not a digest record: {text[:100]!r}")
        return cls(digests)

    @classmethod
    def of(cls, *digests: Digest | None) -> Record | None:
        present = tuple(digest for digest in digests if digest is not None)
        return cls(present) if present else None

    def get(self, algorithm: str) -> Digest | None:
        return next((digest for digest in self.digests if digest.algorithm == algorithm), None)

    @property
    def identity(self) -> Digest:
        """The digest shown and re-verified: SHA-256 where recorded, else the strongest known."""
        return self.get(ALGORITHM) or preferred(self.digests) or self.digests[0]

    @property
    def quick(self) -> Digest:
        """The digest a download checks: the fastest to compute of those recorded."""
        for algorithm in QUICK_PREFERENCE:
            digest = self.get(algorithm)
            if digest is not None:
                return digest
        return self.identity


def quick_digest(header: Any) -> Digest | None:
    """The digest a whole read checks from a record's field (``Repr-Digest``, ``info["digest"]``):
    its quickest, if it is one artifact_fs computes; ``None`` for no field or a malformed one."""
    if not isinstance(header, str) or not header:
        return None
    try:
        quick = Record.parse(header).quick
    except ValueError:
        logger.warning("ignoring a malformed digest field %r", header[:100])
        return None
    return quick if quick.algorithm in PREFERENCE else None


# -- hashing ------------------------------------------------------------------------------------------
class Hasher:
    """Incremental digest of one algorithm (``update`` with bytes as they pass, then ``digest``)."""

    def __init__(self, algorithm: str = ALGORITHM) -> None:
        self.algorithm = algorithm
        self._crc: Any = None
        self._hash: Any = None
        if algorithm == "crc32c":
            self._crc = google_crc32c.Checksum()
        elif algorithm in {"sha-256", "sha-512", "md5"}:
            self._hash = hashlib.new(algorithm.replace("-", ""))
        else:
            raise ValueError(
                f"unsupported digest algorithm {algorithm!r} (use one of {', '.join(PREFERENCE)})"
            )

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._crc is not None:
            self._crc.update(bytes(data) if not isinstance(data, bytes) else data)
        else:
            self._hash.update(data)

    def digest(self) -> Digest:
        if self._crc is not None:
            return Digest(self.algorithm, self._crc.digest())
        return Digest(self.algorithm, self._hash.digest())


RECORDED = (ALGORITHM, "crc32c")
"""What every record holds (``google-crc32c`` is a dependency of the package)."""


def recorded_of(computed: Mapping[str, Digest]) -> Record:
    """The record of :data:`RECORDED` digests out of those computed (which may hold more)."""
    return Record(tuple(computed[algorithm] for algorithm in RECORDED))


def read_digests(
    file: IO[bytes],
    algorithms: Iterable[str] = RECORDED,
    chunk_size: int = READ_CHUNK,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Digest]:
    """Read ``file`` to its end once, hashing every chunk with each algorithm (``progress(n)`` per chunk)."""
    hashers = [Hasher(algorithm) for algorithm in dict.fromkeys(algorithms)]
    while chunk := file.read(chunk_size):
        for hasher in hashers:
            hasher.update(chunk)
        if progress is not None:
            progress(len(chunk))
    return {hasher.algorithm: hasher.digest() for hasher in hashers}


def file_digests(local_path: str | os.PathLike[str], algorithms: Iterable[str] = RECORDED) -> Record:
    """The digests of a local file in one read (hashlib releases the GIL: this runs beside a transfer).
    Unbuffered: the chunks are large, and a buffered reader costs more than a small file's read."""
    with open(local_path, "rb", buffering=0) as file:
        size = os.fstat(file.fileno()).st_size  # a small file is one read of its size, not of a 1 MiB buffer
        return Record(tuple(read_digests(file, algorithms, chunk_size=min(READ_CHUNK, size + 1)).values()))


def file_digest(local_path: str | os.PathLike[str], algorithm: str = ALGORITHM) -> Digest:
    """One digest of a local file."""
    return file_digests(local_path, (algorithm,)).digests[0]


def digest_of(data: bytes, algorithm: str = ALGORITHM) -> Digest:
    """One digest of a buffer."""
    hasher = Hasher(algorithm)
    hasher.update(data)
    return hasher.digest()


def digests_of(data: bytes, algorithms: Iterable[str] = RECORDED) -> dict[str, Digest]:
    """The digests of a buffer, one per algorithm (a repeated algorithm computed once)."""
    return {algorithm: digest_of(data, algorithm) for algorithm in dict.fromkeys(algorithms)}


CRC32C_POLYNOMIAL = 0x82F63B78
"""CRC-32C (Castagnoli), reflected: the polynomial of ``google-crc32c``, GCS and S3."""


def _gf2_times(matrix: Sequence[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: Sequence[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[row]) for row in range(32)]


@functools.lru_cache(maxsize=64)
def _zero_bytes_operator(length: int) -> tuple[int, ...]:
    """The GF(2) matrix moving a CRC past ``length`` zero bytes (parts share a length: cached)."""
    power = [CRC32C_POLYNOMIAL] + [1 << bit for bit in range(31)]  # one zero bit
    for _ in range(3):
        power = _gf2_square(power)  # 2, 4, then 8 zero bits: one zero byte
    result = [1 << bit for bit in range(32)]  # identity
    while length:
        if length & 1:
            result = [_gf2_times(power, row) for row in result]
        length >>= 1
        if length:
            power = _gf2_square(power)
    return tuple(result)


def crc32c_combine(first: int, second: int, second_length: int) -> int:
    """The CRC-32C of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)``, without the bytes.

    zlib's ``crc32_combine`` method for the Castagnoli polynomial: a multipart upload whose parts
    are read concurrently, out of order, still knows its whole file's CRC-32C at the end.
    """
    if second_length <= 0:
        return first
    return _gf2_times(_zero_bytes_operator(second_length), first) ^ second


def crc32c_of(data: bytes) -> int:
    """One buffer's CRC-32C as an integer (what :func:`combined_crc32c` combines)."""
    return int.from_bytes(digest_of(data, "crc32c").value, "big")


def combined_crc32c(parts: Iterable[tuple[int, int]]) -> Digest:
    """The whole file's CRC-32C digest from its parts' ``(crc, length)`` in file order."""
    total = 0
    for index, (crc, length) in enumerate(parts):
        total = crc if index == 0 else crc32c_combine(total, crc, length)
    return Digest("crc32c", total.to_bytes(4, "big"))


class ReceivedCrc32c:
    """The CRC-32C of what a download received: each range's as its pieces arrive, combined in
    file order at the end (:func:`combined_crc32c`). The download's check then needs no
    second read of the file it wrote: 256 MiB read back and hashed took 43 ms here, the pieces
    hashed in passing about 27 ms, beside the network's waits (``google-crc32c`` lets go of the GIL).
    Ranges may arrive on different threads: each range's entry is only ever touched by the one
    reading it.
    """

    def __init__(self) -> None:
        self._ranges: dict[int, tuple[Hasher, int]] = {}

    def add(self, start: int, piece: bytes) -> None:
        hasher, length = self._ranges.get(start) or (Hasher("crc32c"), 0)
        hasher.update(piece)
        self._ranges[start] = (hasher, length + len(piece))

    def digest(self) -> Digest:
        return combined_crc32c(
            (int.from_bytes(hasher.digest().value, "big"), length)
            for _, (hasher, length) in sorted(self._ranges.items())
        )


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether digests are recorded and checked (``ARTIFACT_FS_DIGESTS``, default true)."""
    return bool(settings.ARTIFACT_FS_DIGESTS.get(environ))


def check(path: str, expected: Digest | None, actual: Digest) -> None:
    """Raise :class:`DigestMismatchError` when ``actual`` differs from ``expected`` (if any)."""
    if expected is not None and expected.algorithm == actual.algorithm and expected.value != actual.value:
        raise DigestMismatchError(path, expected, actual)


def check_local_file(path: str, local: str, expected: Record | Digest | None) -> None:
    """Check a downloaded file against a digest (a record's quickest); a mismatch removes the file
    (never a damaged file that looks complete)."""
    if expected is None:
        return
    quick = expected.quick if isinstance(expected, Record) else expected
    try:
        check(path, quick, file_digest(local, quick.algorithm))
    except DigestMismatchError:
        with contextlib.suppress(OSError):
            os.remove(local)
        raise


# -- where digests live -------------------------------------------------------------------------------
class DigestStore(Protocol):
    """Where a backend keeps digests; a backend module may set ``DIGESTS`` to one of these.

    Paths are the backend filesystem's (``root.backend_path``). ``info`` is the fsspec ``info`` or
    listing entry of the file when the caller has it (native checksums come from it for free).
    """

    cheap_lookup: bool
    """True when :meth:`lookup` costs no request per file (listings may then carry digests)."""

    def record(self, fs: AbstractFileSystem, path: str, digest: Record) -> None: ...

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None: ...

    def remove(self, fs: AbstractFileSystem, path: str) -> None: ...

    def location(self, path: str) -> str:
        """Where the record of ``path`` is kept (for tests and tools; the file itself for xattrs)."""
        ...

    # optional: ``kept_by_writes = True`` where the filesystem's ``put_file`` and ``pipe_file``
    # take ``digest=`` and keep the record themselves, before the file appears (:func:`kept_by_writes`);
    # ``checks_gets = True`` where the filesystem's own ``get_file`` checks whole
    # downloads (the store then does not check twice); ``records_uploads = False`` where the
    # receiving server records (the store then does not hash uploads); ``remove_tree(fs, path)``
    # for records that do not live inside the directory they describe (a deleted directory's
    # records go with it otherwise); ``arecord``/``alookup`` for async filesystems.


MLFLOW_ID = re.compile(r"(?:m-)?[0-9a-f]{32}")
"""A run's ID (a UUID's 32 hex digits) or a logged model's (``m-`` and 32 hex digits)."""


def _apart(path: str, *, below: bool) -> str | None:
    """``<id>/.artifact.digests/artifacts/<rest>`` for ``path`` in MLflow's layout, ``…/<run or model
    id>/artifacts/<rest>`` (``below``: only for a path strictly inside ``artifacts``), else ``None``."""
    parts = path.rstrip("/").split("/")
    for index in range(1, len(parts) - (1 if below else 0)):
        if parts[index] == "artifacts" and MLFLOW_ID.fullmatch(parts[index - 1]):
            return "/".join([*parts[:index], DIGEST_DIRECTORY, *parts[index:]])
    return None


def sidecar_path(path: str, *, apart: bool = True) -> str:
    """Where a file's record lives when the store has no place of its own for one (FTP, SFTP, HDFS).

    In MLflow's layout, ``<id>/artifacts/<rest>`` is recorded at ``<id>/.artifact.digests/artifacts/<rest>``:
    inside the run's (or logged model's) directory, so the directory MLflow's own repositories list, the
    run's artifact root, never holds a record. Anywhere else, beside the file:
    ``<dir>/.artifact.digests/<name>``, so a directory's delete takes its records along (always,
    with ``apart=False``: for a filesystem confined to its root, as local ones are).
    """
    kept_apart = _apart(path, below=True) if apart else None
    if kept_apart is not None:
        return kept_apart
    directory, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(directory, DIGEST_DIRECTORY, name) if directory else f"{DIGEST_DIRECTORY}/{name}"


def sidecar_tree(path: str) -> str | None:
    """The records of a directory that are kept apart from it (MLflow's layout), else ``None``."""
    return _apart(path, below=False)


class SidecarDigests:
    """The default: a small file per artifact under the hidden ``.artifact.digests`` directory
    (:func:`sidecar_path`; ``apart=False`` keeps every record beside its file)."""

    cheap_lookup = False

    def __init__(self, *, apart: bool = True) -> None:
        self.apart = apart

    def location(self, path: str) -> str:
        return sidecar_path(path, apart=self.apart)

    def record(self, fs: AbstractFileSystem, path: str, digest: Record) -> None:
        sidecar = self.location(path)
        with contextlib.suppress(OSError, NotImplementedError):
            fs.makedirs(posixpath.dirname(sidecar), exist_ok=True)
        fs.pipe_file(sidecar, digest.header().encode())

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None:
        sidecar = self.location(path)
        try:
            raw = fs.cat_file(sidecar)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return self.parsed(sidecar, raw)

    async def arecord(self, fs: Any, path: str, digest: Record) -> None:
        """:meth:`record` on an async filesystem's own loop (no thread per record)."""
        sidecar = self.location(path)
        with contextlib.suppress(OSError, NotImplementedError):
            await fs._makedirs(posixpath.dirname(sidecar), exist_ok=True)
        await fs._pipe_file(sidecar, digest.header().encode())

    async def alookup(self, fs: Any, path: str, info: Mapping[str, Any] | None) -> Record | None:
        sidecar = self.location(path)
        try:
            raw = await fs._cat_file(sidecar)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return self.parsed(sidecar, raw)

    @staticmethod
    def parsed(sidecar: str, raw: bytes) -> Record:
        if len(raw) > SIDECAR_LIMIT:
            raise ValueError(f"{sidecar!r} is not a digest record ({len(raw)} bytes)")
        return Record.parse(raw.decode("ascii", errors="replace"))

    def remove(self, fs: AbstractFileSystem, path: str) -> None:
        sidecar = self.location(path)
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(sidecar)
        self.prune(fs, posixpath.dirname(sidecar))

    def remove_tree(self, fs: AbstractFileSystem, path: str) -> None:
        """A deleted directory's records, where they are not inside it (MLflow's layout)."""
        tree = sidecar_tree(path) if self.apart else None
        if tree is not None:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(tree, recursive=True)
            self.prune(fs, posixpath.dirname(tree))

    @staticmethod
    def prune(fs: AbstractFileSystem, directory: str) -> None:
        """Remove emptied record directories, up to the ``.artifact.digests`` one (a run's directory
        holding nothing else can then go, as ``artifact-fs gc`` does)."""
        while directory:
            try:
                fs.rmdir(directory)
            except (OSError, NotImplementedError):
                return  # still holds records
            if posixpath.basename(directory) == DIGEST_DIRECTORY:
                return
            directory = posixpath.dirname(directory)


SIDECARS = SidecarDigests()


METADATA_KEY = "artifact-fs-digest"
"""The object metadata key (``x-amz-meta-artifact-fs-digest`` on S3, ``x-goog-meta-artifact-fs-digest``
on GCS) of a record carried by the object itself (:func:`carried`)."""
IDENTIFIER_METADATA_KEY = "artifact_fs_digest"
""":data:`METADATA_KEY` where metadata names must be C# identifiers
(Azure: ``x-ms-meta-artifact_fs_digest``)."""


def carried(backend: Any) -> bool:
    """Whether the backend's objects carry a copy of their record in their metadata: its filesystem
    then takes ``digest=`` on ``_put_file`` and fills ``digest_sink`` on ``_get_file``."""
    return bool(getattr(digest_store(backend), "carried", False))


def carried_record(header: str | None) -> Record | None:
    """The record an object's metadata carries; ``None`` when it carries none, or nothing readable
    (the hidden record is then asked, as for an object written by another tool)."""
    if not header or len(header) > SIDECAR_LIMIT:
        return None
    try:
        return Record.parse(header)
    except ValueError:
        return None


def checks_gets(backend: Any) -> bool:
    """Whether the backend's filesystem checks whole downloads itself (``runs:/``, the proxied client)."""
    return bool(getattr(digest_store(backend), "checks_gets", False))


def kept_by_writes(backend: Any) -> bool:
    """Whether the backend's filesystem keeps the record itself when a write is given ``digest=``
    (``put_file``, ``pipe_file``): the store then records nothing after it."""
    return bool(getattr(digest_store(backend), "kept_by_writes", False))


def records_uploads(backend: Any) -> bool:
    """Whether an upload's digests are recorded on this side (not by a server that receives it)."""
    return bool(getattr(digest_store(backend), "records_uploads", True))


class TransportDigests:
    """For clients of a server that keeps the records itself (``mlflow-artifacts``): nothing is
    recorded here, and the client checks the server's ``Repr-Digest`` on whole reads itself, so a
    download has no second check to make (``lookup`` without a listing entry is ``None``). A
    listing's ``digest`` field reaches ``FileInfo``; an entry without one is asked for it (one HEAD,
    the filesystem's ``repr_digest``) only when a caller wants every digest (``ls --long``)."""

    cheap_lookup = False
    checks_gets = True
    records_uploads = False

    def location(self, path: str) -> str:
        return path  # on the server, which keeps it

    def record(self, fs: AbstractFileSystem, path: str, digest: Record) -> None:
        return None

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None:
        if info is None or info.get("digest") or not callable(getattr(fs, "repr_digest", None)):
            return None  # a download (the client checks), or the listing said it already
        header = fs.repr_digest(path)  # type: ignore[attr-defined]
        return Record.parse(header) if header else None

    def remove(self, fs: AbstractFileSystem, path: str) -> None:
        return None


TRANSPORT = TransportDigests()


def digest_store(backend: Any) -> DigestStore:
    """The backend's :class:`DigestStore` (its module's ``DIGESTS``), else sidecars."""
    return getattr(backend, "DIGESTS", None) or SIDECARS


def native_digests(info: Mapping[str, Any] | None) -> dict[str, Digest]:
    """Checksums a store computed itself, as fsspec's ``info`` reports them.

    GCS (gcsfs): ``crc32c`` and, for non-composite objects, ``md5Hash`` (base64). Azure (adlfs):
    ``content_settings.content_md5`` (bytes). S3: ``ChecksumSHA256`` of a single-part object
    (a composite ``…-N`` multipart checksum is not a digest of the whole file). ``digest``: a
    header value a backend put there itself (the proxied client, from the server's listing).
    """
    found: dict[str, Digest] = {}
    if not info:
        return found

    def add(algorithm: str, raw: Any) -> None:
        with contextlib.suppress(ValueError, TypeError):
            if isinstance(raw, bytes | bytearray):
                value = bytes(raw)
            elif isinstance(raw, str) and raw and "-" not in raw:
                value = base64.b64decode(raw, validate=True)
            else:
                return
            if len(value) == DIGEST_SIZES[algorithm]:
                found[algorithm] = Digest(algorithm, value)

    add("crc32c", info.get("crc32c"))
    add("md5", info.get("md5Hash"))
    add("sha-256", info.get("ChecksumSHA256"))
    content_settings = info.get("content_settings")
    md5 = getattr(content_settings, "content_md5", None)
    if md5 is None and isinstance(content_settings, Mapping):
        md5 = content_settings.get("content_md5")
    add("md5", md5)
    header = info.get("digest")
    if isinstance(header, str):
        with contextlib.suppress(ValueError):
            found.update(parse_field(header))
    return found


def recorded(
    backend: Any, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None = None
) -> Record | None:
    """The digest a whole read of ``path`` is checked against: the backend's record, else a native one."""
    try:
        with errors.translating(path):
            digest = digest_store(backend).lookup(fs, path, info)
    except ValueError as exc:
        raise errors.translate(exc, path) from exc
    return _or_native(digest, info)


def _or_native(digest: Record | None, info: Mapping[str, Any] | None) -> Record | None:
    """A store's record, else the strongest checksum the store computed itself (in ``info``)."""
    return digest if digest is not None else Record.of(preferred(native_digests(info)))


async def arecorded(backend: Any, fs: Any, path: str, info: Mapping[str, Any] | None = None) -> Record | None:
    """:func:`recorded` for an async filesystem: its own coroutines where the store has them."""
    store = digest_store(backend)
    alookup = getattr(store, "alookup", None)
    if alookup is None:
        return await asyncio.get_running_loop().run_in_executor(None, recorded, backend, fs, path, info)
    try:
        with errors.translating(path):
            digest: Record | None = await alookup(fs, path, info)
    except ValueError as exc:
        raise errors.translate(exc, path) from exc
    return _or_native(digest, info)


async def arecorded_under(backend: Any, fs: Any, path: str) -> frozenset[str] | None:
    """The paths under the directory ``path`` that have a record, from one listing of the records
    (the hidden tree of an object store), so a tree download asks only for records that exist.
    ``None`` where the store keeps no such listing (or it fails): each file's record is looked up."""
    listing = getattr(digest_store(backend), "arecorded_under", None)
    if listing is None:
        return None
    try:
        return frozenset(await listing(fs, path))
    except (OSError, ValueError) as exc:
        logger.debug("could not list the records under %r, looking each up: %s", path, exc)
        return None


async def arecord(backend: Any, fs: Any, path: str, digest: Record) -> None:
    """:func:`record` for an async filesystem."""
    store = digest_store(backend)
    arecord_ = getattr(store, "arecord", None)
    if arecord_ is None:
        await asyncio.get_running_loop().run_in_executor(None, record, backend, fs, path, digest)
        return
    try:
        with errors.translating(path):
            await arecord_(fs, path, digest)
    except OSError as exc:
        logger.warning("could not record the digest of %r: %s", path, exc)


def record(backend: Any, fs: AbstractFileSystem, path: str, digest: Record) -> None:
    """Record ``digest`` for the artifact at ``path``; a store that cannot keep it leaves a warning.

    The artifact itself is already complete: failing the upload now would lose nothing but tell the
    caller a lie, so an unrecordable digest is logged (``artifact-fs verify`` lists the file as
    digest-less, ``--record`` adds it later).
    """
    record_in(digest_store(backend), fs, path, digest)


def record_in(store: DigestStore, fs: AbstractFileSystem, path: str, digest: Record) -> None:
    """:func:`record` in a given digest store (a filesystem keeping its own records, ``kept_by_writes``)."""
    try:
        with errors.translating(path):
            store.record(fs, path, digest)
    except OSError as exc:
        logger.warning("could not record the digest of %r: %s", path, exc)


def forget(backend: Any, fs: AbstractFileSystem, path: str, *, tree: bool = False) -> None:
    """Drop the record of a deleted file, or (``tree``) of everything under a deleted directory."""
    store = digest_store(backend)
    with contextlib.suppress(OSError), errors.translating(path):
        if not tree:
            store.remove(fs, path)
        elif callable(getattr(store, "remove_tree", None)):
            store.remove_tree(fs, path)  # type: ignore[attr-defined]


# -- streams ------------------------------------------------------------------------------------------
class RecordingWriter:
    """A writable file that hashes what passes through it and records its digests once committed.

    ``expected`` digests (a client's ``Content-Digest``) are checked before the write is committed:
    a mismatch discards the write (nothing becomes visible) and raises :class:`DigestMismatchError`.
    Everything else is the wrapped file's.
    """

    def __init__(
        self,
        file: IO[bytes],
        *,
        path: str,
        on_commit: Any,
        expected: Iterable[Digest] = (),
    ) -> None:
        self._file = file
        self._path = path
        self._on_commit = on_commit
        self._expected = {digest.algorithm: digest for digest in expected}
        algorithms = {*RECORDED, *self._expected}
        self._hashers = {algorithm: Hasher(algorithm) for algorithm in algorithms}
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for hasher in self._hashers.values():
            hasher.update(view)
        written = self._file.write(data)
        self.size += view.nbytes
        return written if written is not None else view.nbytes

    def digests(self) -> dict[str, Digest]:
        return {algorithm: hasher.digest() for algorithm, hasher in self._hashers.items()}

    def close(self) -> None:
        if self._file.closed:
            return
        computed = self.digests()
        for algorithm, expected in self._expected.items():
            if computed[algorithm].value != expected.value:
                # a file that cannot discard (fsspec's autocommitting LocalFileOpener) is left to
                # the caller's clean-up, which deletes what it wrote (the server's does)
                with contextlib.suppress(RuntimeError):
                    self.discard()
                raise DigestMismatchError(self._path, expected, computed[algorithm])
        record = recorded_of(computed)
        carry = getattr(self._file, "carry_record", None)
        if carry is not None:  # an object store's file: the record rides in the object's metadata too
            carry(record)
        self._file.close()
        self._on_commit(record)

    def discard(self) -> None:
        """Abandon the write through the backend's ``discard``: nothing is published."""
        if self._file.closed:
            return
        if not callable(getattr(self._file, "discard", None)):
            raise RuntimeError(f"{type(self._file).__name__} cannot discard a write")
        discard_write(self._file)

    @property
    def closed(self) -> bool:
        return bool(self._file.closed)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self.size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is not None:
            self.discard()
            return
        self.close()


__all__ = [
    "ALGORITHM",
    "Digest",
    "DigestMismatchError",
    "DigestStore",
    "Hasher",
    "ReceivedCrc32c",
    "RecordingWriter",
    "SidecarDigests",
    "check",
    "check_local_file",
    "digest_store",
    "enabled",
    "field",
    "file_digest",
    "kept_by_writes",
    "native_digests",
    "parse_field",
    "record",
    "record_in",
    "recorded",
]
