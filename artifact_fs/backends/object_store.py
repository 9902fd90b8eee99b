"""What S3, GCS and Azure share, written once: their object-store behaviour on top of s3fs, gcsfs, adlfs.

* :data:`CAPABILITIES`: what every object store here does (each backend only states its differences);
* :func:`fs_path`: ``<bucket>/<key>``, the path form of s3fs, gcsfs and adlfs;
* :class:`ObjectStoreFileSystem`: a mixin (put it before the SDK's filesystem class) for Python-slicing
  ranges (:mod:`~artifact_fs.backends.ranges`), a missing path that is ``FileNotFoundError`` on delete,
  a virtual directory that has nothing to copy, the bucket/key split of presigned calls, fsspec's
  ``batch_size`` from the policy, and SDK errors translated by :mod:`artifact_fs.errors`;
* :data:`DIGESTS`: digest sidecars written with one PUT and read with one GET;
* :class:`Presigner` and the four hooks the artifact server calls (``create_multipart_upload``,
  ``complete_multipart_upload``, ``abort_multipart_upload``, ``presigned_download_url``): the
  arguments are checked and the answers shaped here, the signing is each store's.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from fsspec import AbstractFileSystem
from fsspec.asyn import AsyncFileSystem, sync_wrapper

from artifact_fs.backends.ranged_download import GetObject, stream_version
from artifact_fs.backends.ranges import cat_slice
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import is_invalid_range, report_timeouts, translate_errors, translating
from artifact_fs.integrity import (
    IDENTIFIER_METADATA_KEY,
    METADATA_KEY,
    Record,
    SidecarDigests,
    carried_record,
)
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    atomic_write=True, server_side_copy=True, multipart_upload=True, presign=True, recursive_list=True
)
"""Folders are key prefixes (no empty directories), listed flat; an object appears whole or not at
all; ranges are read; parts upload concurrently and presigned (the server's multipart and
presigned-download routes use the hooks below)."""


def fs_path(uri: ArtifactURI, options: Mapping[str, Any] | None = None, *, key: str | None = None) -> str:
    """``<bucket>/<key>`` (a bucket-root artifact URI is just the bucket); ``key`` replaces the URI's."""
    return f"{uri.bucket}/{uri.key if key is None else key}".rstrip("/")


OPEN_AFTER_HEAD = 1.0
"""Seconds an object's ``info`` (``isfile``, ``exists``: a HEAD or metadata GET) answers the next
open of it for reading instead of asking again: pyarrow asks ``isfile`` and then opens every file it
reads. The open takes that answer's size and version (S3 pins its ETag with ``If-Match``), so an
object replaced in between is read as one replaced after the open's own request would be."""
HEADS_KEPT = 64
"""Recent ``info`` answers a filesystem keeps for :data:`OPEN_AFTER_HEAD`."""
VERSION_ARGUMENTS = ("version_id", "generation")
"""``info`` arguments naming a version other than the latest: such an answer is never kept."""


class KnownDetails:
    """A file opened with the object's ``info`` already in hand (``details``, from
    :meth:`ObjectStoreFileSystem.recent_info`) asks for none: fsspec's, s3fs's, gcsfs's and adlfs's
    files all read ``details`` before asking."""

    def __init__(self, *args: Any, details: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if details is not None:
            self._details = dict(details)  # fsspec's ``details``, read by the size and version pins
        super().__init__(*args, **kwargs)


class ObjectStoreFileSystem(AsyncFileSystem):
    """Object-store semantics every backend here needs and s3fs, gcsfs or adlfs lack or differ on.

    Subclasses list the coroutine methods whose SDK errors :mod:`artifact_fs.errors` translates in
    ``translated_methods``; their sync twins are rebound to the translated coroutines (the SDKs bind
    some twins to their own coroutines, which would skip the translation).
    """

    container_noun: ClassVar[str] = "bucket"
    suffix_range_reads: ClassVar[bool] = False
    """The SDK sends ``cat_file(path, -n)`` as one suffix-range request, without asking the size first."""
    translated_methods: ClassVar[tuple[str, ...]] = ()
    cat_object_options: ClassVar[Mapping[str, Any]] = {}
    """What makes the SDK's ``_cat_file`` one GET (s3fs asks the size first unless not concurrent)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.__dict__.get("translated_methods", ()):
            translated = translate_errors(getattr(cls, name))
            setattr(cls, name, translated)
            setattr(cls, name[1:], sync_wrapper(translated))

    def __init__(self, *args: Any, batch_size: int | None = None, **kwargs: Any) -> None:
        self._heads: dict[str, tuple[float, dict[str, Any]]] = {}
        """Recent ``info`` answers of objects by path, for the next open (:data:`OPEN_AFTER_HEAD`)."""
        super().__init__(*args, **kwargs)
        if batch_size is not None:
            self.batch_size = batch_size  # not every SDK passes it on to fsspec
        report_timeouts(self)  # a stalled transfer is the builtin TimeoutError, not fsspec's

    # -- an open right after an info takes its answer (OPEN_AFTER_HEAD) --------------------------------
    async def _info(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``info``; an object's answer for the latest version is kept for the next open."""
        info = await super()._info(path, *args, **kwargs)  # type: ignore[misc]
        if not any(kwargs.get(name) for name in VERSION_ARGUMENTS) and not self.split_path(path)[2]:  # type: ignore[attr-defined]
            self.remember_info(info)
        return info

    def remember_info(self, info: Mapping[str, Any]) -> None:
        """Keep an object's ``info`` answer for the next open of it (:data:`OPEN_AFTER_HEAD`)."""
        if info.get("type") != "file":
            return
        heads = self._heads
        name = self._strip_protocol(info["name"]).rstrip("/")
        heads.pop(name, None)
        heads[name] = (time.monotonic(), dict(info))
        while len(heads) > HEADS_KEPT:
            heads.pop(next(iter(heads)), None)

    def recent_info(self, path: str) -> dict[str, Any] | None:
        """The ``info`` answer of ``path`` made less than :data:`OPEN_AFTER_HEAD` ago, taken once."""
        entry = self._heads.pop(self._strip_protocol(path).rstrip("/"), None)
        if entry is None or time.monotonic() - entry[0] > OPEN_AFTER_HEAD:
            return None
        return entry[1]

    def invalidate_cache(self, path: str | None = None) -> None:
        """The SDK's, and the answers kept for opens (:data:`OPEN_AFTER_HEAD`) of ``path`` and below
        it (all of them when ``path`` is ``None``): a write through this filesystem is never read as
        what was there before."""
        super().invalidate_cache(path)
        heads = getattr(self, "_heads", None)
        if not heads:
            return
        if path is None:
            heads.clear()
            return
        stripped = self._strip_protocol(path).rstrip("/")
        for name in tuple(heads):  # a snapshot: the event loop's thread may add one meanwhile
            if name == stripped or name.startswith(stripped + "/"):
                heads.pop(name, None)

    def object_path(self, path: str) -> tuple[str, str]:
        """``(bucket, key)`` of an object; a path naming only a bucket is refused."""
        bucket, key, _ = self.split_path(path)  # type: ignore[attr-defined]
        if not key:
            raise ValueError(f"{path!r} names a {self.container_noun}, not an object")
        return bucket, key

    def check_version_id(self, version_id: str | None) -> None:
        if version_id and not self.version_aware:  # type: ignore[attr-defined]
            raise ValueError("version_id cannot be given unless the filesystem is version aware")

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """``data[start:end]``, as fsspec defines it: an empty or past-the-end range is ``b""``."""

        async def fetch(first: int | None, stop: int | None) -> Any:
            return await super(ObjectStoreFileSystem, self)._cat_file(path, start=first, end=stop, **kwargs)

        if self.suffix_range_reads and start is not None and start < 0 and end is None:
            try:
                return bytes(await fetch(start, end))
            except Exception as exc:
                if is_invalid_range(exc):  # the object is empty
                    return b""
                raise
        return await cat_slice(self, path, start, end, fetch=fetch, is_416=is_invalid_range)

    async def _cat_object(self, path: str) -> bytes:
        """A whole (small) object in one GET: no size asked first, as :meth:`_cat_file` does."""
        return bytes(await super()._cat_file(path, **self.cat_object_options))  # type: ignore[misc]

    cat_object = sync_wrapper(_cat_object)

    def version_getter(self, path: str, info: Mapping[str, Any]) -> tuple[GetObject, str] | None:
        """One GET of the object ``path`` and the value that pins it (``IfMatch``) to the version
        ``info`` (an open handle's details) describes; ``None`` where this store has no such pair."""
        return None

    def version_stream(
        self, path: str, info: Mapping[str, Any], span: tuple[int, int], batch_size: int
    ) -> AsyncIterator[list[bytes]] | None:
        """The bytes ``span`` (first and last) of the version ``info`` describes, as one ranged GET
        streamed on this filesystem's loop in batches of at least ``batch_size`` bytes
        (:func:`~artifact_fs.backends.ranged_download.stream_version`); errors translated. ``None``
        where the store cannot pin a GET to that version (:meth:`version_getter`)."""
        pinned = self.version_getter(path, info)
        if pinned is None:
            return None
        get_object, version = pinned
        return _translated(stream_version(get_object, span, version, batch_size), path)

    async def _raise_if_missing(self, path: str | list[str]) -> None:
        """``FileNotFoundError`` for one path that does not exist (a store answers its delete with success).

        A list (what fsspec expanded, or a listing's children) is deleted as it is, without a request
        per name.
        """
        if isinstance(path, str) and not await self._exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    async def _rm(self, path: str | list[str], recursive: bool = False, **kwargs: Any) -> Any:
        """The SDK's delete, except a missing path is ``FileNotFoundError`` (as fsspec's local one)."""
        await self._raise_if_missing(path)
        return await super()._rm(path, recursive=recursive, **kwargs)

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> Any:
        """Copy one object; a virtual directory (a prefix, not an object) has nothing to copy."""
        try:
            return await super()._cp_file(path1, path2, **kwargs)
        except FileNotFoundError:
            if await self._isdir(path1):
                return None
            raise


async def _translated(stream: AsyncIterator[list[bytes]], path: str) -> AsyncIterator[list[bytes]]:
    """``stream`` with its errors translated (:func:`~artifact_fs.errors.translating`), closed with it."""
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        with translating(path):
            async for batch in stream:
                yield batch


def record_path(path: str) -> str:
    """Where an object's digest record lives: ``<bucket>/.artifact.digests/<key>``.

    One hidden tree at the top of the bucket, keyed by the object's whole key, so MLflow's own
    repositories, which list a run's artifact prefix, never meet a record (and ``mlflow gc``, which
    deletes that prefix, leaves records it cannot see rather than tripping over them). The record is
    a function of the object's key, not of the artifact root it was written through.
    """
    bucket, _, key = path.strip("/").partition("/")
    return f"{bucket}/{DIGEST_DIRECTORY}/{key}"


class ObjectSidecars(SidecarDigests):
    """Digest records as small objects in the bucket's hidden tree (:func:`record_path`): one PUT to
    record (a key prefix needs no directory made: s3fs and gcsfs answer ``makedirs`` with a bucket
    lookup per call) and one GET to look up (no size asked first)."""

    def location(self, path: str) -> str:
        return record_path(path)

    def record(self, fs: AbstractFileSystem, path: str, digest: Record) -> None:
        fs.pipe_file(record_path(path), digest.header().encode())

    async def arecord(self, fs: Any, path: str, digest: Record) -> None:
        await fs._pipe_file(record_path(path), digest.header().encode())

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None:
        cat = getattr(fs, "cat_object", fs.cat_file)
        try:
            raw = bytes(cat(record_path(path)))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return self.parsed(record_path(path), raw)

    async def alookup(self, fs: Any, path: str, info: Mapping[str, Any] | None) -> Record | None:
        cat = getattr(fs, "_cat_object", fs._cat_file)
        try:
            raw = bytes(await cat(record_path(path)))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return self.parsed(record_path(path), raw)

    async def arecorded_under(self, fs: Any, path: str) -> set[str]:
        """The objects under the prefix ``path`` that have a record: one listing of the hidden tree."""
        bucket = path.strip("/").partition("/")[0]
        hidden = f"{bucket}/{DIGEST_DIRECTORY}/"
        prefix = record_path(path).rstrip("/")
        names = await fs._find(prefix + "/")
        return {f"{bucket}/{name[len(hidden) :]}" for name in names if name.startswith(hidden)}

    def remove(self, fs: AbstractFileSystem, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(record_path(path))

    def remove_tree(self, fs: AbstractFileSystem, path: str) -> None:
        """The records of every object under a prefix (a deleted directory or root)."""
        with contextlib.suppress(FileNotFoundError):
            fs.rm(record_path(path).rstrip("/") + "/", recursive=True)


DIGESTS = ObjectSidecars()


class CarriedObjectSidecars(ObjectSidecars):
    """:class:`ObjectSidecars`, and a copy of the record in the object's own metadata under
    ``metadata_key`` where the digest is known before the upload starts (a small file, hashed
    first). A download then finds the record in its own GET's answer and asks the hidden tree only
    when the object carries none. The hidden record stays the one that counts for an object
    replaced behind artifact_fs's back: a new object has no copy in its metadata.

    The backend's filesystem takes ``digest=`` (a :class:`Record`) in ``_put_file`` and
    ``_pipe_file``, and fills ``digest_sink["digest"]`` (the carried header, if any) in ``_get_file``."""

    carried = True

    def __init__(self, *, metadata_key: str = METADATA_KEY) -> None:
        super().__init__()
        self.metadata_key = metadata_key
        """The metadata name the record rides under: :data:`~artifact_fs.integrity.METADATA_KEY`
        (S3, GCS), or :data:`~artifact_fs.integrity.IDENTIFIER_METADATA_KEY` where names must be
        identifiers (Azure)."""

    def _carried(self, info: Mapping[str, Any] | None) -> Record | None:
        """The record an object's ``info`` carries in its metadata (S3's ``Metadata``, gcsfs's and
        adlfs's ``metadata``), if any."""
        if not info:
            return None
        metadata = info.get("Metadata") or info.get("metadata") or {}
        return carried_record(metadata.get(self.metadata_key)) if isinstance(metadata, Mapping) else None

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None:
        return self._carried(info) or super().lookup(fs, path, info)

    async def alookup(self, fs: Any, path: str, info: Mapping[str, Any] | None) -> Record | None:
        return self._carried(info) or await super().alookup(fs, path, info)


CARRIED_DIGESTS = CarriedObjectSidecars()
"""S3's and GCS's (``x-amz-meta-artifact-fs-digest``, ``x-goog-meta-artifact-fs-digest``)."""
IDENTIFIER_CARRIED_DIGESTS = CarriedObjectSidecars(metadata_key=IDENTIFIER_METADATA_KEY)
"""Azure's: metadata names are C# identifiers (``x-ms-meta-artifact_fs_digest``)."""


class Presigner(abc.ABC):
    """One store's presigned multipart upload and download; one instance serves one hook call.

    The hooks check the arguments and shape the answers MLflow's client expects; a store signs.
    """

    max_parts: ClassVar[int] = 10_000

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    @abc.abstractmethod
    def start(self, path: str, bucket: str, key: str) -> tuple[str | None, dict[str, str]]:
        """Begin an upload: its id (``None`` when the store needs none) and the headers every part sends."""

    @abc.abstractmethod
    def part_url(self, path: str, upload_id: str | None, part_number: int) -> str:
        """The presigned URL a client PUTs part ``part_number`` to."""

    @abc.abstractmethod
    def complete(self, path: str, upload_id: str | None, parts: list[dict[str, Any]]) -> None:
        """Assemble the uploaded parts, in part-number order, into the object at ``path``."""

    @abc.abstractmethod
    def abort(self, path: str, upload_id: str | None) -> None:
        """Drop whatever parts of the upload exist (none is fine)."""

    @abc.abstractmethod
    def download(self, path: str, expiration: int) -> tuple[str, dict[str, str], int]:
        """A presigned GET served as an attachment: its URL, the headers it needs, and the object's size."""


def _presigner(fs: Any) -> Presigner:
    presigner_class: type[Presigner] = fs.presigner_class
    return presigner_class(fs)


def create_multipart_upload(fs: Any, path: str, num_parts: int, environ: Mapping[str, str]) -> dict[str, Any]:
    """Start an upload and presign one URL per part (numbers 1..N), as MLflow's server answers."""
    presigner = _presigner(fs)
    if not 1 <= num_parts <= presigner.max_parts:
        raise ValueError(f"num_parts must be between 1 and {presigner.max_parts}, got {num_parts}")
    upload_id, headers = presigner.start(path, *fs.object_path(path))
    credentials = [
        {"url": presigner.part_url(path, upload_id, number), "part_number": number, "headers": dict(headers)}
        for number in range(1, num_parts + 1)
    ]
    return {"upload_id": upload_id, "credentials": credentials}


def complete_multipart_upload(
    fs: Any, path: str, upload_id: str | None, parts: list[dict[str, Any]], environ: Mapping[str, str]
) -> None:
    fs.object_path(path)
    _presigner(fs).complete(path, upload_id, parts)


def abort_multipart_upload(fs: Any, path: str, upload_id: str | None, environ: Mapping[str, str]) -> None:
    fs.object_path(path)
    _presigner(fs).abort(path, upload_id)


def presigned_download_url(fs: Any, path: str, expiration: int, environ: Mapping[str, str]) -> dict[str, Any]:
    fs.object_path(path)
    url, headers, size = _presigner(fs).download(path, expiration)
    return {"url": url, "headers": headers, "file_size": size}
