"""S3 and S3-compatible stores (``s3://bucket/key``) over s3fs: MLflow's upload arguments, bounded
equal-size parts, S3's folder semantics, and errors that say where the credentials came from.

:mod:`artifact_fs.backends.s3_options` turns MLflow's variables into this filesystem's options (the
variables are listed there); presigned multipart uploads and downloads are in
:mod:`artifact_fs.backends.s3_presign`; downloads (concurrent ranges into a preallocated file) in
:mod:`artifact_fs.backends.s3_download`; streamed multipart writes in :mod:`artifact_fs.backends.s3_parts`.
Multipart uploads use equal-size parts (so Cloudflare R2 and similar stores accept them), several in
flight, and a failed multipart upload is aborted so no part is left pending.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import mimetypes
import os
import socket
import urllib.parse
import weakref
from collections.abc import Mapping
from typing import Any

import botocore.exceptions
import botocore.handlers
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from fsspec.asyn import sync, sync_wrapper
from fsspec.callbacks import DEFAULT_CALLBACK
from s3fs import S3File, S3FileSystem

from artifact_fs import errors, integrity, settings
from artifact_fs.backends import object_store, ranged_download, read_cache, s3_download, s3_small, s3_upload
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.object_store import ObjectStoreFileSystem
from artifact_fs.backends.ranged_download import GetObject
from artifact_fs.backends.s3_options import (
    CREDENTIAL_SOURCES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_READ_BLOCK_SIZE,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRIES,
    SIGNATURE_VERSION,
    S3Options,
    check_chunk_size,
    credential_environment_digest,
    options,
    parse_timestamp,
)
from artifact_fs.backends.s3_parts import ConcurrentParts
from artifact_fs.backends.s3_presign import S3Presigner
from artifact_fs.policy import DEFAULT_CONNECT_TIMEOUT, DOWNLOAD_PART_SIZE, stall_bounded_sockets

CAPABILITIES = dataclasses.replace(object_store.CAPABILITIES, write_parts_min_size=settings.S3_MIN_PART)
DIGESTS = object_store.CARRIED_DIGESTS

# S3's presign hooks, which the artifact server calls (artifact_fs.root); object_store checks and shapes.
create_multipart_upload = object_store.create_multipart_upload
complete_multipart_upload = object_store.complete_multipart_upload
abort_multipart_upload = object_store.abort_multipart_upload
presigned_download_url = object_store.presigned_download_url

# MLflow (s3_artifact_repo._download_file) passes only these upload extra args to downloads.
_READ_EXTRA_ARGS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5", "RequestPayer")
_UPLOAD_METHODS = frozenset({"put_object", "create_multipart_upload"})
_TRANSFER_CONTROLS = ("callback", "max_concurrency", "mode")
"""``put_file`` arguments that steer the transfer and are not S3 request arguments."""


def _carry(arguments: dict[str, Any], record: integrity.Record) -> None:
    """Put ``record`` in the upload ``arguments``' ``Metadata`` (``x-amz-meta-artifact-fs-digest``)."""
    arguments["Metadata"] = {**arguments.get("Metadata", {}), integrity.METADATA_KEY: record.header()}


_LOADERS: dict[tuple[str, ...], Any] = {}


def _shared_loader(session: AioSession) -> Any:
    """One botocore data loader per set of search paths, shared by every filesystem's session: each
    new session would otherwise parse S3's service model and endpoint rules again (~50 ms a client)."""
    loader = session.get_component("data_loader")
    return _LOADERS.setdefault(tuple(loader.search_paths), loader)


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], AioSession]] = (
    weakref.WeakKeyDictionary()
)


def _shared_session(arguments: Mapping[str, Any]) -> AioSession:
    """The configured botocore session of this event loop for the current credential environment.

    A session costs ~4 ms to make (botocore registers its ~200 handlers, checking each one's
    signature), paid by every filesystem built outside fsspec's instance cache. A session holds no
    connection and no per-filesystem handler (a client copies the session's handlers), so the
    filesystems of one loop share it, as boto3's default session is shared by the clients MLflow
    makes. What it does keep: the credentials it resolved and the AWS config files it read; so it
    is shared only while :func:`credential_environment_digest` and those files are unchanged (a new
    environment gets a new session, as a new filesystem always had), and only within one event loop
    (botocore sessions are not thread-safe; a loop is one thread). ``arguments``: the session's own
    (s3fs passes ``profile`` and other unknown options to ``AioSession``).
    """
    key = (credential_environment_digest(), _aws_files_stamp(), repr(sorted(arguments.items())))
    sessions = _SESSIONS.setdefault(asyncio.get_running_loop(), {})
    session = sessions.get(key)
    if session is None:
        session = sessions[key] = _configure(AioSession(**arguments))
    return session


def _aws_files_stamp() -> tuple[tuple[int, int] | None, ...]:
    """The modification time and size of the AWS config and credentials files (``None``: missing)."""
    stamps: list[tuple[int, int] | None] = []
    for setting, default in (
        (settings.AWS_CONFIG_FILE, "~/.aws/config"),
        (settings.AWS_SHARED_CREDENTIALS_FILE, "~/.aws/credentials"),
    ):
        try:
            stat = os.stat(os.path.expanduser(setting.raw() or default))
        except OSError:
            stamps.append(None)
        else:
            stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def _configure(session: AioSession) -> AioSession:
    """Standard-library timestamp parsing, botocore's models loaded once per process, and no
    ``Expect: 100-continue`` (see :meth:`ArtifactS3FileSystem.set_session`)."""
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    session.unregister("before-call.s3", botocore.handlers.add_expect_header)
    session.register_component("data_loader", _shared_loader(session))
    return session


def _is_aws(endpoint_url: str | None) -> bool:
    host = (urllib.parse.urlsplit(endpoint_url).hostname or "") if endpoint_url else "amazonaws.com"
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn")) or host == "amazonaws.com"


def guess_content_headers(name: str) -> dict[str, str]:
    """MLflow's ``ContentType`` / ``ContentEncoding`` from the file name (``.tar.gz`` -> tar + gzip)."""
    content_type, encoding = mimetypes.guess_type(name)
    guessed = {}
    if content_type:
        guessed["ContentType"] = content_type
    if encoding:
        guessed["ContentEncoding"] = encoding
    return guessed


class ArtifactS3File(
    DiscardOnError, ConcurrentParts, object_store.KnownDetails, read_cache.DirectReads, S3File
):
    """An S3 file whose failed write leaves nothing behind: no object, no pending multipart upload.

    Parts go up several at a time (:class:`~artifact_fs.backends.s3_parts.ConcurrentParts`).

    A ``with`` block that raises discards the file, which aborts its multipart upload (s3fs's
    ``discard``); a part or the final commit that fails aborts the upload too.

    ``details``: the object's ``info`` when the filesystem already has it (a HEAD just made,
    :data:`.object_store.OPEN_AFTER_HEAD`): a file opened for reading then asks none, and pins its
    ETag.
    """

    def discard(self) -> None:
        """s3fs's discard (abort the multipart upload), except a failing abort does not hide the error
        that caused it."""
        self._abort_quietly()
        self.buffer = None

    def _abort_quietly(self) -> None:
        self.drop_pending_parts()
        try:
            self._abort_mpu()
        except Exception:  # noqa: BLE001 - the original error is the one to report
            self.mpu = None

    def _upload_chunk(self, final: bool = False) -> bool:
        try:
            return bool(super()._upload_chunk(final=final))
        except BaseException:
            self._abort_quietly()
            raise

    def commit(self) -> None:
        try:
            if not self._commit_presigned():
                super().commit()
        except BaseException:
            self._abort_quietly()
            raise

    def _commit_presigned(self) -> bool:
        """A file written in one piece (the server's PUT of a small artifact) as one presigned PUT
        (:mod:`.s3_small`), as ``put_file`` sends one; ``False`` where s3fs's commit applies."""
        if self.parts or self.mpu or self.buffer is None or self.tell() == 0 or "x" in self.mode or self.acl:
            return False
        data = self.buffer.getvalue()
        arguments = {**self.s3_additional_kwargs, **self.kwargs}
        if not sync(self.fs.loop, self.fs._put_presigned, self.path, data, arguments):
            return False
        self.buffer = None
        return True

    def carry_record(self, record: integrity.Record) -> None:
        """Put the file's digest record in the object's metadata (the server's uploads, through
        :class:`~artifact_fs.integrity.RecordingWriter`), when the object is still to be created:
        a download then finds it in its HEAD or GET and asks no record object."""
        if not self.mpu and self.autocommit:
            _carry(self.s3_additional_kwargs, record)

    def _fetch_range(self, start: int, end: int) -> bytes:
        """A ranged read as one presigned GET (:mod:`.s3_small`), pinned to the ETag the file opened
        (s3fs's ``If-Match``); s3fs's own read for anything that path leaves."""
        if start < end and self._presigned_reads():
            data = sync(
                self.fs.loop,
                self.fs.small.read_range,
                self.bucket,
                self.key,
                start,
                end,
                self.read_kw.get("IfMatch"),
            )
            if data is not None:
                return data
        return bytes(super()._fetch_range(start, end))

    def _fetch_range_into(self, start: int, view: memoryview) -> bool:
        """:meth:`_fetch_range`'s presigned GET written into ``view`` (:class:`.read_cache.DirectReads`)."""
        if not self._presigned_reads():
            return False
        small = self.fs.small
        return bool(
            sync(
                self.fs.loop,
                small.read_range_into,
                self.bucket,
                self.key,
                start,
                view,
                self.read_kw.get("IfMatch"),
            )
        )

    def _presigned_reads(self) -> bool:
        """Whether reads may be presigned GETs: not a version, requester pays or an expiry check."""
        plain = not (self.version_id or self.read_kw.get("RequestPayer") or self.fs.local_expiry_check)
        return bool(plain and self.fs.small.enabled)


class ArtifactS3FileSystem(ObjectStoreFileSystem, S3FileSystem):
    """s3fs with MLflow's upload arguments, equal-size bounded-concurrency parts and one error table.

    Construct it through :func:`artifact_fs.backends.s3.options` (environment + overrides) or directly
    with the keyword arguments of ``S3Options``; anything else is passed to :class:`s3fs.S3FileSystem`.
    """

    protocol = ("s3", "s3a")
    suffix_range_reads = True
    cat_object_options = {"max_concurrency": 1}
    presigner_class = S3Presigner

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        verify: bool | str | None = None,
        addressing_style: str = "auto",
        signature_version: str | None = SIGNATURE_VERSION,
        upload_extra_args: Mapping[str, Any] | None = None,
        expected_bucket_owner: str | None = None,
        chunk_size: int = 10 * settings.MIB,
        read_block_size: int = DEFAULT_READ_BLOCK_SIZE,
        download_part_size: int = DOWNLOAD_PART_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_RETRIES + 1,
        client_kwargs: Mapping[str, Any] | None = None,
        config_kwargs: Mapping[str, Any] | None = None,
        s3_additional_kwargs: Mapping[str, Any] | None = None,
        credential_environment: str | None = None,
        presigned_small_requests: bool = True,
        **kwargs: Any,
    ) -> None:
        check_chunk_size(chunk_size)
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency!r} must be at least 1")
        extra = dict(upload_extra_args or {})
        client = dict(client_kwargs or {})
        if verify is not None:
            client.setdefault("verify", verify)
        config: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
            "s3": {"addressing_style": addressing_style},
        }
        if region_name:
            config["region_name"] = region_name
        if signature_version:
            config["signature_version"] = signature_version
        if not _is_aws(endpoint_url):
            # botocore >= 1.36 sends CRC checksums by default; many S3-compatible stores refuse them.
            config["request_checksum_calculation"] = "when_required"
            config["response_checksum_validation"] = "when_required"
        factory = _connector_socket_factory(read_timeout)
        if factory is not None:  # an upload body the store stops reading fails after read_timeout
            config["connector_args"] = {"socket_factory": factory}
        for name, value in (config_kwargs or {}).items():
            config[name] = {**config.get(name, {}), **value} if name == "connector_args" else value
        additional = {name: extra[name] for name in _READ_EXTRA_ARGS if name in extra}
        if expected_bucket_owner:
            additional["ExpectedBucketOwner"] = expected_bucket_owner
        additional.update(s3_additional_kwargs or {})
        super().__init__(
            endpoint_url=endpoint_url,
            client_kwargs=client,
            config_kwargs=config,
            s3_additional_kwargs=additional,
            default_block_size=chunk_size,
            max_concurrency=max_concurrency,
            fixed_upload_size=True,
            **{"default_cache_type": read_cache.NAME, **kwargs},
        )
        self.upload_extra_args = extra
        self.expected_bucket_owner = expected_bucket_owner
        self.chunk_size = chunk_size
        self.read_block_size = read_block_size
        self.download_part_size = download_part_size
        # botocore's standard mode already retries throttling and transient errors with back-off;
        # s3fs's own loop on top would multiply the attempts (and the time to report a dead endpoint).
        self.retries = 2
        self.presigned_small_requests = presigned_small_requests
        self.small = s3_small.SmallRequests(self)

    async def set_session(self, refresh: bool = False, kwargs: Mapping[str, Any] | None = None) -> Any:
        """s3fs's client, made from a botocore session shared while the credential environment is
        the same (:func:`_shared_session`) and configured with standard-library timestamp parsing
        (:func:`.s3_options.parse_timestamp`), botocore's models loaded once per process
        (:func:`_shared_loader`), and uploads that send their body without waiting for
        ``100 Continue`` first: aiohttp applies no timeout to that wait, so a store that stopped
        answering held every PUT forever."""
        if self._s3 is not None and not refresh:  # made and configured already (every call asks)
            return self._s3
        if getattr(self, "session", None) is None:  # the session s3fs would make, configured here
            self.session = _shared_session(self.kwargs)
        else:  # a session the caller passed (or the one a refresh keeps)
            _configure(self.session)
        return await super().set_session(refresh, dict(kwargs or {}))

    connect = sync_wrapper(set_session)

    # -- every S3 call: MLflow's upload arguments in, builtin errors out ------------------------------
    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        if method in _UPLOAD_METHODS:
            guessed = guess_content_headers(kwargs.get("Key", ""))
            # Lowest priority first: guessed headers < s3fs / caller arguments < MLflow's extra args
            # < explicit keyword arguments of this call.
            akwarglist = (guessed, *akwarglist, self.upload_extra_args)
        try:
            return await super()._call_s3(method, *akwarglist, **kwargs)
        except Exception as exc:
            translated = await self._translated(exc, kwargs)
            if translated is exc:
                raise
            raise translated from _cause(exc)

    call_s3 = sync_wrapper(_call_s3)

    async def _translated(self, exc: Exception, kwargs: Mapping[str, Any]) -> Exception:
        if isinstance(exc, ValueError | TypeError | NotImplementedError):
            return exc
        cause = _cause(exc)
        path = "/".join(part for part in (kwargs.get("Bucket"), kwargs.get("Key")) if part) or None
        translated = errors.translate(cause, path)
        if isinstance(translated, PermissionError):
            # A HEAD answer has no body, so a 403 cannot tell a bad key from a denied action: name
            # the credential source on every permission error.
            source = await self._credential_source()
            advice = (
                "check that key and secret belong to this endpoint"
                if errors.is_credential_error(cause)
                else "check that this identity may access the bucket and key"
            )
            translated = PermissionError(
                translated.errno, f"{translated.strerror}; the credentials came from {source}: {advice}", path
            )
        return translated

    async def _credential_source(self) -> str:
        if self.anon:
            return "nowhere (anonymous, unsigned requests)"
        if self.key:
            return "the key / secret options passed to artifact_fs"
        profile = self.kwargs.get("profile")
        try:
            credentials = await self.session.get_credentials() if self.session is not None else None
        except Exception:  # noqa: BLE001 - describing the source must not hide the real error
            credentials = None
        if credentials is None:
            return (
                "nowhere: no AWS credentials were found (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or pass key / secret)"
            )
        described = CREDENTIAL_SOURCES.get(credentials.method, f"botocore's {credentials.method!r} provider")
        if profile:
            described += f", profile {profile!r}"
        return described

    # -- uploads ------------------------------------------------------------------------------------
    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        *args: Any,
        chunksize: int | None = None,
        digest: integrity.Record | None = None,
        **kwargs: Any,
    ) -> Any:
        """``digest``: the file's record, carried in the object's metadata (``CarriedObjectSidecars``).
        A file of at most one part is one presigned PUT (:mod:`.s3_small`) where nothing needs the SDK."""
        # MLflow guesses from the local file's name; extra args (added in _call_s3) still override.
        kwargs = {**guess_content_headers(str(lpath)), **self.upload_extra_args, **kwargs}
        if digest is not None:
            _carry(kwargs, digest)
        chunksize = chunksize or self.chunk_size
        size = os.path.getsize(lpath) if os.path.isfile(lpath) else -1
        if not args and (
            await self._put_small(lpath, rpath, size, kwargs)
            or await self._put_parts(lpath, rpath, size, kwargs, chunksize)
        ):
            return None
        return await super()._put_file(lpath, rpath, *args, chunksize=chunksize, **kwargs)

    async def _put_parts(
        self, lpath: str, rpath: str, size: int, kwargs: Mapping[str, Any], chunk_size: int
    ) -> bool:
        """A file of several parts as presigned parts read in threads (:mod:`.s3_upload`); ``False``
        where the SDK's path applies (presigned requests off, an exclusive create, one part).
        ``size``: the local file's, -1 for anything but a file."""
        if not self.small.enabled or kwargs.get("mode", "overwrite") != "overwrite" or size < 2 * chunk_size:
            return False
        arguments = {name: value for name, value in kwargs.items() if name not in _TRANSFER_CONTROLS}
        await s3_upload.put_file(
            self,
            lpath,
            rpath,
            size,
            arguments,
            chunk_size=chunk_size,
            concurrency=kwargs.get("max_concurrency") or self.max_concurrency,
            callback=kwargs.get("callback") or DEFAULT_CALLBACK,
        )
        self.invalidate_cache(rpath)  # and its parents (s3fs's)
        return True

    async def _put_small(self, lpath: str, rpath: str, size: int, kwargs: Mapping[str, Any]) -> bool:
        if not self._presignable(size, kwargs):
            return False
        callback = kwargs.get("callback") or DEFAULT_CALLBACK
        callback.set_size(size)
        with open(lpath, "rb") as file:
            data = file.read()
        if not await self._put_presigned(rpath, data, kwargs):
            return False
        callback.relative_update(size)
        return True

    async def _pipe_file(
        self,
        path: str,
        data: Any,
        *args: Any,
        chunksize: int | None = None,
        digest: integrity.Record | None = None,
        **kwargs: Any,
    ) -> Any:
        """``digest``: the bytes' record, carried in the object's metadata (as ``_put_file``'s)."""
        if digest is not None:
            _carry(kwargs, digest)
        if (
            not args
            and self._presignable(len(data), kwargs)
            and await self._put_presigned(path, bytes(data), kwargs)
        ):
            return None
        return await super()._pipe_file(path, data, *args, chunksize=chunksize or self.chunk_size, **kwargs)

    def _presignable(self, size: int, kwargs: Mapping[str, Any]) -> bool:
        """Whether an upload of ``size`` bytes may be one presigned PUT (:mod:`.s3_small`)."""
        overwrite = kwargs.get("mode", "overwrite") == "overwrite"
        return self.small.enabled and overwrite and 0 <= size < 2 * self.chunk_size  # s3fs's one-PUT rule

    async def _put_presigned(self, path: str, data: bytes, kwargs: Mapping[str, Any]) -> bool:
        """``data`` as the object at ``path`` in one presigned PUT, with the upload arguments the SDK
        call would send (guessed < MLflow's extra args < this call's); ``False``: the SDK sends it."""
        bucket, key = self.object_path(path)
        arguments = {**guess_content_headers(key), **self.upload_extra_args, **kwargs}
        for control in _TRANSFER_CONTROLS:
            arguments.pop(control, None)
        if not await self.small.put(bucket, key, data, arguments):
            return False
        self.invalidate_cache(path)  # and its parents (s3fs's)
        return True

    async def _cat_object(self, path: str) -> bytes:
        """A whole small object (a digest record) in one presigned GET where possible."""
        data = await self.small.cat(*self.object_path(path)) if self.small.enabled else None
        return data if data is not None else await super()._cat_object(path)

    cat_object = sync_wrapper(_cat_object)

    async def _info(
        self,
        path: str,
        bucket: str | None = None,
        key: str | None = None,
        refresh: bool = False,
        version_id: str | None = None,
    ) -> dict[str, Any]:
        """s3fs's ``info``, an object's asked with one presigned HEAD (:mod:`.s3_small`) that also
        gives its ``Metadata`` (so a carried record needs no second request); s3fs's own for
        anything else (a cached listing, a version, a directory or a missing key)."""
        bucket_name, object_key, version = self.split_path(path)
        if (
            self.small.enabled
            and object_key
            and not (version or version_id)
            and (refresh or self._ls_from_cache(f"{bucket_name}/{object_key}") is None)
        ):
            head = await self.small.head(bucket_name, object_key)
            if head is not None:
                self.remember_info(head)  # the presigned HEAD: kept for the next open (object_store)
                return head
        info: dict[str, Any] = await super()._info(path, bucket, key, refresh=refresh, version_id=version_id)
        return info

    # -- fsspec semantics s3fs misses ----------------------------------------------------------------
    async def _get_file(self, rpath: str, lpath: str, callback: Any = DEFAULT_CALLBACK, **kw: Any) -> None:
        """Concurrent ranged GETs into a preallocated ``lpath``, parents made (:mod:`.s3_download`);
        ``digest_sink["digest"]`` gets the record the object carries in its metadata, if any, and
        ``digest_sink["received"]`` the CRC-32C of the bytes received."""
        sink = kw.get("digest_sink")
        received = integrity.ReceivedCrc32c() if sink is not None else None
        get_object = s3_download.object_getter(self, rpath, version_id=kw.get("version_id"))
        first = await ranged_download.get_file(self, get_object, lpath, callback, received=received)
        if sink is not None and first is not None and received is not None:
            sink["digest"] = (first.get("Metadata") or {}).get(integrity.METADATA_KEY)
            sink["received"] = received.digest()

    async def _read_small(self, path: str, limit: int) -> tuple[bytes, dict[str, Any]] | None:
        """The whole object ``path`` in one GET if it has at most ``limit`` bytes, with the info of
        the version read (its ETag, size, and the metadata a record rides in: no HEAD first);
        ``None`` when it is larger (:func:`.ranged_download.read_small`)."""
        read = await ranged_download.read_small(s3_download.object_getter(self, path), limit)
        if read is None:
            return None
        data, answer = read
        info = {"name": path, "type": "file", "size": len(data), "ETag": answer.get("ETag")}
        return data, {**info, "Metadata": dict(answer.get("Metadata") or {})}

    def version_getter(self, path: str, info: Mapping[str, Any]) -> tuple[GetObject, str] | None:
        """A GET of ``path`` (presigned first, :mod:`.s3_small`) pinned by the ETag ``info`` names."""
        etag = info.get("ETag")
        return (s3_download.object_getter(self, path), etag) if etag else None

    async def _rm_file(self, path: str, **kwargs: Any) -> Any:
        """Delete one object; a missing one is ``FileNotFoundError`` (S3 itself answers 204)."""
        await self._info(path)
        result = await super()._rm_file(path, **kwargs)
        await self._remove_emptied_folders(self._parent(self._strip_protocol(path)))
        return result

    # -- deletes ------------------------------------------------------------------------------------
    async def _rm(self, path: str | list[str], recursive: bool = False, **kwargs: Any) -> Any:
        if not recursive:
            removed = await super()._rm(path, **kwargs)
            names = [path] if isinstance(path, str) else list(path)
            for parent in sorted({self._parent(self._strip_protocol(name).rstrip("/")) for name in names}):
                await self._remove_emptied_folders(parent)
            return removed
        # Expanded here (not inside s3fs) to know which folders the delete empties.
        await self._raise_if_missing(path)
        expanded = await self._expand_path(path, recursive=True)
        removed = await S3FileSystem._rm(self, expanded, **kwargs)
        roots = [path] if isinstance(path, str) else list(path)
        await self._remove_folder_markers(roots, expanded)
        for root in roots:
            await self._remove_emptied_folders(self._parent(self._strip_protocol(root).rstrip("/")))
        return removed

    async def _remove_emptied_folders(self, folder: str) -> None:
        """Walk up from ``folder`` dropping the entries of folders that no longer hold any key.

        A parent still holding a key - including an explicit ``<parent>/`` marker object, as the
        AWS console creates - stops the walk, so folders that exist on AWS stay.
        """
        current = folder
        while True:
            bucket, key, _ = self.split_path(current)
            if not key:
                return
            listing = await self._call_s3("list_objects_v2", Bucket=bucket, Prefix=key + "/", MaxKeys=1)
            if listing.get("KeyCount", len(listing.get("Contents", []))):
                return
            await self._call_s3("delete_object", Bucket=bucket, Key=key + "/")
            self.invalidate_cache(current)
            current = self._parent(current)

    async def _remove_folder_markers(self, roots: list[str], removed: list[str]) -> None:
        """Delete the ``<prefix>/`` entries of the folders a recursive delete emptied, deepest first.

        On AWS these keys usually do not exist and the request is a no-op; stores that keep folders
        as entries of their own (SeaweedFS lists an emptied prefix for about a minute) drop them, so
        listings match AWS right away. Only folders inside the deleted trees are touched, and a store
        refuses to drop a folder that still has children.
        """
        stripped = [self._strip_protocol(root).rstrip("/") for root in roots]
        folders: dict[str, set[str]] = {}
        for name in [*stripped, *(self._strip_protocol(item) for item in removed)]:
            for root in stripped:
                if name != root and not name.startswith(root + "/"):
                    continue
                current = name
                while current and (current == root or current.startswith(root + "/")):
                    bucket, key, _ = self.split_path(current)
                    if key:
                        folders.setdefault(bucket, set()).add(key.rstrip("/") + "/")
                    current = self._parent(current) if current != root else ""
        for bucket, keys in folders.items():
            # One request per depth, deepest first: a store may handle a batch's keys in any order,
            # and a folder is only dropped once its sub-folders are gone.
            by_depth: dict[int, list[str]] = {}
            for key in keys:
                by_depth.setdefault(key.count("/"), []).append(key)
            for depth in sorted(by_depth, reverse=True):
                level = sorted(by_depth[depth])
                for start in range(0, len(level), 1000):
                    batch = [{"Key": key} for key in level[start : start + 1000]]
                    await self._call_s3(
                        "delete_objects", Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                    )
            self.invalidate_cache(bucket)

    def _open(
        self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any
    ) -> ArtifactS3File:
        """s3fs's ``_open`` with :class:`ArtifactS3File`, small read blocks and part-sized write blocks."""
        version_id = kwargs.pop("version_id", None)
        self.check_version_id(version_id)
        if block_size is None:
            block_size = self.read_block_size if "r" in mode else self.chunk_size
        if "r" not in mode and block_size < settings.S3_MIN_PART:
            raise ValueError(
                f"block_size={block_size} is below S3's 5 MiB minimum part size; use at least "
                f"{settings.S3_MIN_PART}"
            )
        fill_cache = kwargs.pop("fill_cache", None)
        cache_type = kwargs.pop("cache_type", None)
        requester_pays = kwargs.pop("requester_pays", None)
        file_options = {
            name: kwargs.pop(name) for name in ("autocommit", "size", "cache_options") if name in kwargs
        }
        acl = kwargs.pop("acl", False)
        additional = {**self.s3_additional_kwargs, **kwargs}
        plain_read = mode == "rb" and version_id is None and "size" not in file_options and not requester_pays
        details = self.recent_info(path) if plain_read else None
        return ArtifactS3File(
            self,
            path,
            mode,
            block_size=block_size,
            acl=acl or additional.get("ACL", False),
            version_id=version_id,
            fill_cache=self.default_fill_cache if fill_cache is None else fill_cache,
            s3_additional_kwargs=additional,
            cache_type=cache_type or self.default_cache_type,
            requester_pays=self.requester_pays if requester_pays is None else requester_pays,
            details=details,
            **file_options,
        )


def _connector_socket_factory(read_timeout: float | None) -> Any:
    """:func:`~artifact_fs.policy.stall_bounded_sockets` where aiobotocore takes a ``socket_factory``
    among its ``connector_args``, else ``None``."""
    factory = stall_bounded_sockets(read_timeout)
    return factory if factory is not None and _aiobotocore_takes_socket_factory() else None


@functools.cache
def _aiobotocore_takes_socket_factory() -> bool:
    """Whether aiobotocore accepts ``connector_args={"socket_factory": ...}`` (asked once a process,
    by building an ``AioConfig`` with one)."""
    try:
        AioConfig(connector_args={"socket_factory": socket.socket})
    except botocore.exceptions.ParamValidationError:
        return False
    return True


def _cause(exc: BaseException) -> BaseException:
    """The SDK's own exception behind one s3fs already turned into a builtin error."""
    cause = exc.__cause__
    if cause is not None and isinstance(exc, OSError) and type(exc).__module__ == "builtins":
        return cause
    return exc


def filesystem(options: S3Options) -> ArtifactS3FileSystem:
    return ArtifactS3FileSystem(**options)


fs_path = object_store.fs_path


__all__ = [
    "CAPABILITIES",
    "DEFAULT_MAX_CONCURRENCY",
    "ArtifactS3File",
    "ArtifactS3FileSystem",
    "S3Options",
    "abort_multipart_upload",
    "complete_multipart_upload",
    "create_multipart_upload",
    "credential_environment_digest",
    "filesystem",
    "fs_path",
    "guess_content_headers",
    "options",
    "presigned_download_url",
]
