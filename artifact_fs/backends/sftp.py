"""SFTP (``sftp://[user[:password]@]host[:port]/path``) over sshfs (asyncssh), configured like MLflow.

* ``~/.ssh/config`` is honoured as MLflow's ``SFTPArtifactRepository`` does (``HostName``, ``User``
  and ``Port`` when the URI has none, ``IdentityFile``), by asyncssh's own OpenSSH-config reader, so
  ``Include``, ``Match`` and ``ProxyJump`` work too. ``ssh_config`` names another file.
* Host keys are checked by default against ``~/.ssh/known_hosts`` (or the config's
  ``UserKnownHostsFile``, or ``known_hosts=`` / ``ARTIFACT_FS_SFTP_KNOWN_HOSTS``); an unknown key is
  a ``PermissionError`` that says how to trust it. ``check_host_key=False`` /
  ``ARTIFACT_FS_SFTP_CHECK_HOST_KEY=false`` is the explicit, warned opt-out (sshfs alone checks
  nothing).
* A password in the URI works, with a warning: it ends up in MLflow's tracking store in clear text.
  User and password are percent-decoded (RFC 3986; MLflow takes the SFTP password raw, which
  differs only for a password containing ``%XX``: pass ``password=`` explicitly then).
* Writes are atomic (:mod:`artifact_fs.backends.atomic`): bytes go to ``.artifact.uploading.<random>``
  beside the target and are renamed over it with OpenSSH's ``posix-rename``; such names are hidden
  from listings. A failed write, or a file dropped unclosed, removes the temporary.
* Connecting is bounded by the transfer policy's ``connect_timeout`` (``connect_timeout=`` wins).
  Errors pass through :mod:`artifact_fs.errors` and name the action and the path.
* ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` (``transfer_timeout=``; unset or ``-1``: none, as with
  MLflow's pysftp) bounds a stall, not a transfer (:mod:`artifact_fs.backends.sftp_timeouts`).
* sshfs returns whole files for ranged ``cat_file`` and directory names with a trailing ``/``;
  both are corrected here.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any, TypedDict
from urllib.parse import quote

import asyncssh
from fsspec.asyn import sync, sync_wrapper
from fsspec.spec import AbstractBufferedFile
from sshfs import SSHFileSystem
from sshfs.file import SSHFile
from sshfs.utils import wrap_exceptions

from artifact_fs import errors, settings
from artifact_fs.backends import atomic, sftp_timeouts
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(empty_directories=True, atomic_write=True, server_side_copy=True)
"""No exclusive create, multipart upload or presigning; the rest as the defaults."""

DEFAULT_HOST = "localhost"


class PasswordInURIWarning(UserWarning):
    """A password was given in an sftp:// URI (it is stored and logged wherever the URI is)."""


class HostKeyCheckingDisabledWarning(UserWarning):
    """Host keys are not checked: anyone on the path can impersonate the server."""


class SFTPOptions(TypedDict, total=False):
    """Storage options of :class:`ArtifactSFTPFileSystem` (any other asyncssh option passes through)."""

    host: str
    port: int
    username: str
    password: str
    client_keys: list[str]
    """Private key files; by default asyncssh tries the config's IdentityFile, ssh-agent, ~/.ssh/id_*."""
    known_hosts: str | None
    check_host_key: bool
    ssh_config: str | None
    connect_timeout: float | None
    """Seconds for asyncssh to connect and authenticate: the transfer policy's ``connect_timeout``."""
    transfer_timeout: float | None
    """Seconds the server may stay silent during an operation: MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT."""


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> SFTPOptions:
    """Connection options from the URI, ``ARTIFACT_FS_SFTP_*`` and the policy; explicit ``overrides`` win."""
    policy = policy or TransferPolicy.from_environ(environ)
    result: SFTPOptions = {
        "host": uri.host or DEFAULT_HOST,
        "check_host_key": settings.ARTIFACT_FS_SFTP_CHECK_HOST_KEY.get(environ),
        "connect_timeout": policy.connect_timeout,
        "transfer_timeout": policy.transfer_timeout_or(None),  # MLflow's pysftp waits forever
    }
    if uri.port:
        result["port"] = uri.port
    if uri.username:
        result["username"] = uri.username
    if uri.password is not None and "password" not in overrides:
        warnings.warn(
            f"the artifact URI {uri} carries an SFTP password; it is stored in clear text wherever "
            "the URI is (MLflow's tracking store, logs). Prefer a key (~/.ssh/config IdentityFile) "
            "or ssh-agent.",
            PasswordInURIWarning,
            stacklevel=3,
        )
        result["password"] = uri.password
    known_hosts = settings.ARTIFACT_FS_SFTP_KNOWN_HOSTS.get(environ)
    if known_hosts:
        result["known_hosts"] = known_hosts
    config = settings.ARTIFACT_FS_SFTP_CONFIG.get(environ) or _user_ssh_config(environ)
    if config:
        result["ssh_config"] = config
    result.update(overrides)  # type: ignore[typeddict-item]
    return result


def _user_ssh_config(environ: Mapping[str, str]) -> str | None:
    """``$HOME/.ssh/config`` of the given environment, if it exists (MLflow reads the same file)."""
    home = settings.HOME.get(environ) or os.path.expanduser("~")
    path = os.path.join(home, ".ssh", "config")
    return path if os.path.isfile(path) else None


def connect_arguments(options: SFTPOptions) -> dict[str, Any]:
    """The keyword arguments for asyncssh (through sshfs), with host-key checking made explicit."""
    arguments: dict[str, Any] = dict(options)
    check = arguments.pop("check_host_key", True)
    known_hosts = arguments.pop("known_hosts", None)
    config = arguments.pop("ssh_config", None)
    if config is not None:
        if not os.path.isfile(os.path.expanduser(config)):
            raise ValueError(f"SFTP ssh_config {config!r} does not exist; give an OpenSSH client config file")
        arguments["config"] = [os.path.expanduser(config)]
    if not check:
        if known_hosts:
            raise ValueError(
                f"SFTP options check_host_key=False and known_hosts={known_hosts!r} contradict each "
                "other: drop one"
            )
        arguments["known_hosts"] = None
    elif known_hosts:
        if not os.path.exists(os.path.expanduser(known_hosts)):
            raise ValueError(
                f"SFTP known_hosts file {known_hosts!r} does not exist; create it "
                "(ssh-keyscan -p <port> <host> >> <file>) or point known_hosts at an existing one"
            )
        arguments["known_hosts"] = os.path.expanduser(known_hosts)
    else:
        arguments["known_hosts"] = ()  # asyncssh: ~/.ssh/known_hosts or the config's UserKnownHostsFile
    return arguments


def filesystem(options: SFTPOptions) -> ArtifactSFTPFileSystem:
    """Connect now, so bad credentials, an unknown host key or a refused port fail here, clearly."""
    arguments = connect_arguments(options)
    host = arguments.pop("host", DEFAULT_HOST)
    if arguments["known_hosts"] is None:
        warnings.warn(
            f"SFTP host-key checking is off for {host}: anyone between here and the server can "
            "impersonate it. Use known_hosts= instead.",
            HostKeyCheckingDisabledWarning,
            stacklevel=2,
        )
    user = f"{arguments['username']}@" if arguments.get("username") else ""
    with errors.translating(f"{user}{host}:{arguments.get('port', 22)}", action="SFTP login to"):
        return ArtifactSFTPFileSystem(host, **arguments)


def fs_path(uri: ArtifactURI, options: SFTPOptions) -> str:
    """The absolute path on the server, as written in the URI (MLflow does not decode it)."""
    return uri.path or "/"


def _translated(method: Callable[..., Any], action: str) -> Callable[..., Any]:
    """Errors name the action and the path (sshfs drops it); asyncssh's own become builtin ones."""

    @functools.wraps(method)
    async def wrapper(self: ArtifactSFTPFileSystem, path: Any, *args: Any, **kwargs: Any) -> Any:
        with self.translating(path, action):
            return await method(self, path, *args, **kwargs)

    return wrapper


class ArtifactSFTPFileSystem(SSHFileSystem):
    """sshfs with atomic writes, correct ranged reads, hidden temporary files and clean names."""

    protocol = ("sftp", "ssh")

    def __init__(self, host: str, *, transfer_timeout: float | None = None, **kwargs: Any) -> None:
        self.transfer_timeout = transfer_timeout
        watch = self.watch = sftp_timeouts.ConnectionWatch()
        keepalive = sftp_timeouts.keepalive_arguments(transfer_timeout)
        super().__init__(host, **{**keepalive, "client_factory": lambda: watch, **kwargs})
        errors.report_timeouts(self)
        if transfer_timeout is not None:  # only a stall ends a transfer by ConnectionLost
            sftp_timeouts.quiet_abandoned_block_tasks(self.loop)
        self.host = host
        self.port = kwargs.get("port")
        self.username = kwargs.get("username")

    @contextlib.contextmanager
    def translating(self, path: Any, action: str) -> Iterator[None]:
        """Builtin errors naming ``path``; a ``TimeoutError`` naming the variable after a stall."""
        try:
            with errors.translating(path if isinstance(path, str) else None, action=f"SFTP {action}"):
                yield
        except OSError as exc:
            if not self.watch.stalled:
                raise
            type(self).clear_instance_cache()  # the connection is gone: the next lookup reconnects
            raise sftp_timeouts.stall_error(action, path, self.host, self.transfer_timeout) from exc

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """sshfs's version, also for lists of paths (fsspec's ``get``/``put`` pass lists)."""
        if isinstance(path, list | tuple):
            return [cls._strip_protocol(p) for p in path]
        return super()._strip_protocol(path)

    def unstrip_protocol(self, name: str) -> str:
        """A URL that names this server (never the password)."""
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        return f"sftp://{user}{self.host}{port}{self._strip_protocol(name)}"

    def write_beside(self, path: str) -> atomic.WriteBeside:
        """An atomic write of ``path``: a hidden temporary beside it, renamed over it in one step."""
        return atomic.WriteBeside(path, rename=self._replace, remove=self._remove_temporary)

    async def _replace(self, temporary: str, path: str) -> None:
        """Rename ``temporary`` over ``path`` in one step (OpenSSH's posix-rename)."""
        async with self._pool.get() as channel:
            await channel.posix_rename(temporary, path)

    async def _remove_temporary(self, temporary: str) -> None:
        async with self._pool.get() as channel:
            await channel.remove(temporary)

    # -- listings ------------------------------------------------------------------------------
    @wrap_exceptions
    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path) or "."
        try:
            entries = await super()._ls(path, detail=True)
        except (FileNotFoundError, asyncssh.SFTPError):
            info = await self._info(path)  # FileNotFoundError when missing
            if info["type"] == "directory":
                raise
            entries = [info]  # a file lists as itself (OpenSSH answers opendir(file) with "no such file")
        visible = sorted(atomic.without_temporaries(entries), key=lambda entry: entry["name"])
        return visible if detail else [entry["name"] for entry in visible]

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        info: dict[str, Any] = await super()._info(path, **kwargs)
        if info["name"] != "/":
            info["name"] = info["name"].rstrip("/")
        return info

    # -- reads ---------------------------------------------------------------------------------
    @wrap_exceptions
    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        try:
            return await self._read(path, start, end, kwargs.get("version"))
        except asyncssh.SFTPFailure as exc:
            if await self._isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path) from exc
            raise

    async def _read(
        self, path: str, start: int | None, end: int | None, version: tuple[Any, Any] | None = None
    ) -> bytes:
        """The bytes of ``path`` (a Python slice); ``version`` (size, mtime) pins a range to the
        version a reader opened: a file replaced since (our writes rename a new one over it) is
        ``OSError(ESTALE)``, never a mix of two versions' bytes."""
        async with self._pool.get() as channel, channel.open(path, "rb") as remote:
            if start is None and end is None:
                return await remote.read()  # type: ignore[no-any-return]
            attributes = await remote.stat()
            size = attributes.size
            if version is not None and (size, _mtime(attributes.mtime)) != version:
                raise OSError(
                    errno.ESTALE, "the artifact changed while it was being read; read it again", path
                )
            first, stop, _ = slice(start, end).indices(size)
            if stop <= first:
                return b""
            await remote.seek(first)
            return await remote.read(stop - first)  # type: ignore[no-any-return]

    async def _get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        if await self._isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        if os.path.dirname(lpath):
            os.makedirs(os.path.dirname(lpath), exist_ok=True)
        await super()._get_file(rpath, lpath, **kwargs)

    # -- writes --------------------------------------------------------------------------------
    async def _put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        async with self.write_beside(rpath) as temporary:
            await super()._put_file(lpath, temporary, **kwargs)
        self.invalidate_cache(rpath)

    async def _pipe_file(self, path: str, data: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if mode == "create" and await self._exists(path):
            raise FileExistsError(errno.EEXIST, "already exists", path)
        async with self.write_beside(path) as temporary:
            await super()._pipe_file(temporary, data, **kwargs)
        self.invalidate_cache(path)

    @wrap_exceptions
    async def _cp_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        """Copy on the server (SFTP ``copy-data``) when it can, else through the client; atomically."""
        if await self._isdir(lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        await self._makedirs(self._parent(rpath), exist_ok=True)
        async with self.write_beside(rpath) as temporary, self._pool.get() as channel:
            await channel.copy(lpath, temporary)

    @wrap_exceptions
    async def _mv(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        await self._makedirs(self._parent(rpath), exist_ok=True)
        await super()._mv(lpath, rpath, **kwargs)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> SSHFile | AbstractBufferedFile:
        path = self._strip_protocol(path)
        if "r" in mode:
            if self.isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            return SFTPReadFile(self, path, mode="rb", **kwargs)
        atomic.prepare_write(self, path, mode, "SFTP")
        return AtomicSFTPFile(self, path, **kwargs)


class SFTPReadFile(AbstractBufferedFile):
    """A buffered, seekable, picklable reader: each block is one ranged read of the remote file,
    of the version (size and modification time) the reader opened."""

    def _fetch_range(self, start: int, end: int) -> bytes:
        mtime = self.details.get("mtime")
        version = (self.details.get("size"), _mtime(mtime.timestamp() if mtime else None))
        return self.fs.cat_file(self.path, start, end, version=version)  # type: ignore[no-any-return]


def _mtime(seconds: float | None) -> int | None:
    """SFTP v3 times are whole seconds."""
    return None if seconds is None else int(seconds)


class AtomicSFTPFile(DiscardOnError, SSHFile):
    """Writes to a temporary name beside the target, renamed over it on a clean close.

    Leaving a ``with`` block by an exception, or dropping the file unclosed, removes the temporary
    file; a killed process leaves it behind, hidden from listings, and the target untouched.
    """

    discard_when_dropped = True

    def __init__(self, fs: ArtifactSFTPFileSystem, path: str, **kwargs: Any) -> None:
        self.target = path
        self.beside = fs.write_beside(path)
        self.temporary = self.beside.temporary
        self._closed: bool = False
        with fs.translating(path, "open"):
            super().__init__(fs, self.temporary, mode="wb", **kwargs)

    def write(self, data: Any) -> int:
        with self.fs.translating(self.target, "write"):
            return super().write(data)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._closed:
            return
        try:
            with self.fs.translating(self.target, "write"):
                super().close()
                sync(self.loop, self.beside.apublish)
        except BaseException:
            self.discard()
            raise
        self.fs.invalidate_cache(self.target)

    def discard(self) -> None:
        if not self._closed:
            with suppress(Exception):
                super().close()
        self._closed = True
        sync(self.loop, self.beside.adiscard)


# -- presigned uploads and downloads --------------------------------------------------------
PRESIGN_UNSUPPORTED = "SFTP has no presigned URLs; clients upload through the artifact server"
"""Why the artifact server answers 501 to presign requests here (the backend has no presign hooks)."""


# Every path-taking coroutine names its action and path in errors and raises only builtin ``OSError``s.
_ACTIONS = {
    "_info": "stat", "_ls": "list", "_cat_file": "read", "_get_file": "download", "_put_file": "upload",
    "_pipe_file": "write", "_cp_file": "copy", "_mv": "rename", "_rm_file": "delete", "_rmdir": "rmdir",
    "_mkdir": "mkdir", "_makedirs": "makedirs",
}  # fmt: skip
for _name, _action in _ACTIONS.items():
    setattr(ArtifactSFTPFileSystem, _name, _translated(getattr(ArtifactSFTPFileSystem, _name), _action))
# sshfs binds these to its own (untranslated) coroutines at class level; fsspec mirrors no sync
# ``rmdir`` for ``_rmdir`` (not one of its async methods), so without this one it is a silent no-op.
ArtifactSFTPFileSystem.mkdir = sync_wrapper(ArtifactSFTPFileSystem._mkdir)
ArtifactSFTPFileSystem.makedirs = sync_wrapper(ArtifactSFTPFileSystem._makedirs)
ArtifactSFTPFileSystem.rmdir = sync_wrapper(ArtifactSFTPFileSystem._rmdir)
