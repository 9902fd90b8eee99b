"""HDFS (``hdfs://host:port/path``, ``hdfs:/path``, ``viewfs://``) configured like MLflow's repository.

MLflow's ``HdfsArtifactRepository`` builds ``pyarrow.fs.HadoopFileSystem(host="<scheme>://<host>"
or "default", port=<port> or 0, user=MLFLOW_KERBEROS_USER, kerb_ticket=MLFLOW_KERBEROS_TICKET_CACHE,
extra_conf=MLFLOW_PYARROW_EXTRA_CONF as k=v,k2=v2)``. The same variables configure two engines here:

* ``pyarrow``: exactly MLflow's call (``hdfs_pyarrow.PyarrowHdfsFileSystem``). It needs a JVM,
  ``libhdfs.so`` (Apache's Hadoop binary tarball; no package registry ships it) and Hadoop's jars on
  ``CLASSPATH`` (filled from ``hadoop classpath --glob`` when unset).
* ``hdfs-native``: a JVM-free client speaking Hadoop RPC itself. The ticket cache is its
  ``kerberos_cache``; ``extra_conf`` is its Hadoop configuration; core-site.xml / hdfs-site.xml come
  from ``$HADOOP_CONF_DIR`` or ``$HADOOP_HOME/etc/hadoop`` as with libhdfs.

``engine="auto"`` (the default, or ``ARTIFACT_FS_HDFS_ENGINE``) takes pyarrow when its native
libraries can be found and hdfs-native otherwise; the check only looks for files and never starts a
JVM, so it cannot crash or hang the process.

No call may hang on an unreachable NameNode: both engines get bounded connection retries
(``connect_retries``) unless the Hadoop configuration the user gives says otherwise, and a NameNode
named with an explicit port is probed with a ``connect_timeout`` before the client is built.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import datetime
import errno
import glob
import os
import posixpath
import re
import shutil
import socket
import subprocess
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypedDict

from fsspec import AbstractFileSystem
from fsspec.spec import AbstractBufferedFile

from artifact_fs import errors, settings
from artifact_fs.backends import BackendUnavailableError
from artifact_fs.backends.ranges import slice_bounds
from artifact_fs.capabilities import Capabilities
from artifact_fs.uris import ArtifactURI, redact

CAPABILITIES = Capabilities(
    empty_directories=True,
    atomic_write=False,
    exclusive_create=True,
    server_side_copy=False,
    range_read=True,
    multipart_upload=False,
    presign=False,
)

Engine = Literal["auto", "hdfs-native", "pyarrow"]
ENGINES: tuple[str, ...] = ("auto", "hdfs-native", "pyarrow")
ENGINE_VARIABLE = "ARTIFACT_FS_HDFS_ENGINE"

DEFAULT_CONNECT_RETRIES = 3
"""Attempts to reach a NameNode before an operation fails (Hadoop's own default retries for minutes)."""
DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a NameNode's TCP handshake."""
STREAM_CHUNK_SIZE = 1024 * 1024
"""MLflow's ARTIFACT_STREAM_CHUNK_SIZE: the unit of HDFS stream copies."""


class HdfsOptions(TypedDict, total=False):
    """Storage options of the HDFS backend (both engines)."""

    engine: Engine
    scheme: str
    """``hdfs`` or ``viewfs``."""
    host: str | None
    """NameNode host, nameservice or viewfs cluster; None for the default filesystem (core-site.xml)."""
    port: int | None
    user: str | None
    """MLFLOW_KERBEROS_USER: pyarrow's ``user``."""
    kerb_ticket: str | None
    """MLFLOW_KERBEROS_TICKET_CACHE: the Kerberos ticket cache path."""
    extra_conf: dict[str, str] | None
    """MLFLOW_PYARROW_EXTRA_CONF: Hadoop configuration keys."""
    connect_retries: int
    connect_timeout: float
    hadoop_conf_dir: str | None
    """Where hdfs-native reads core-site.xml / hdfs-site.xml: HADOOP_CONF_DIR, else HADOOP_HOME/etc/hadoop."""


# -- options -------------------------------------------------------------------------------------
def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> HdfsOptions:
    """MLflow's HDFS variables for ``uri``; explicit keyword arguments win."""
    result: HdfsOptions = {
        "engine": _engine_from(environ),
        "scheme": uri.scheme,
        "host": uri.host or None,
        "port": uri.port,
        "user": settings.MLFLOW_KERBEROS_USER.get(environ),
        "kerb_ticket": settings.MLFLOW_KERBEROS_TICKET_CACHE.get(environ),
        "extra_conf": settings.MLFLOW_PYARROW_EXTRA_CONF.get(environ) or None,
        "connect_retries": DEFAULT_CONNECT_RETRIES,
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "hadoop_conf_dir": _hadoop_conf_dir(environ),
    }
    unknown = set(overrides) - set(HdfsOptions.__annotations__)
    if unknown:
        raise ValueError(
            f"unknown HDFS option(s) {sorted(unknown)}; the options are {sorted(HdfsOptions.__annotations__)}"
        )
    result.update(overrides)  # type: ignore[typeddict-item]
    _check(result)
    return result


def _hadoop_conf_dir(environ: Mapping[str, str]) -> str | None:
    """The Hadoop configuration directory as libhdfs and hdfs-native look for it."""
    if environ.get("HADOOP_CONF_DIR"):
        return environ["HADOOP_CONF_DIR"]
    if environ.get("HADOOP_HOME"):
        return os.path.join(environ["HADOOP_HOME"], "etc", "hadoop")
    return None


def _engine_from(environ: Mapping[str, str]) -> Engine:
    value = environ.get(ENGINE_VARIABLE, "auto")
    if value not in ENGINES:
        raise ValueError(
            f"Invalid value {value!r} for environment variable {ENGINE_VARIABLE}: expected one of {ENGINES}"
        )
    return value  # type: ignore[return-value]


def _check(result: HdfsOptions) -> None:
    if result.get("engine", "auto") not in ENGINES:
        raise ValueError(f"unknown HDFS engine {result.get('engine')!r}; use one of {ENGINES}")
    retries = result.get("connect_retries", DEFAULT_CONNECT_RETRIES)
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"connect_retries must be a non-negative integer, got {retries!r}")
    timeout = result.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {timeout!r}")
    extra = result.get("extra_conf")
    if extra is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError("extra_conf must map Hadoop configuration keys (str) to values (str)")


def pyarrow_arguments(options: HdfsOptions) -> dict[str, Any]:
    """The keyword arguments MLflow passes to ``pyarrow.fs.HadoopFileSystem`` for these options.

    ``host`` is ``"<scheme>://<host>"`` (or ``"default"``: core-site.xml's fs.defaultFS) and ``port``
    0 when absent, as in MLflow's ``hdfs_system``. Bounded IPC retries are added unless given.
    """
    host = options.get("host")
    scheme = options.get("scheme", "hdfs")
    extra_conf = dict(_bounded_ipc_retries(options))
    extra_conf.update(options.get("extra_conf") or {})
    return {
        "host": f"{scheme}://{host}" if host else "default",
        "port": options.get("port") or 0,
        "user": options.get("user"),
        "kerb_ticket": options.get("kerb_ticket"),
        "extra_conf": extra_conf,
    }


def _bounded_ipc_retries(options: HdfsOptions) -> dict[str, str]:
    """Hadoop's Java client keys that bound connecting to a NameNode (its defaults retry 10 x 45 s)."""
    retries = str(options.get("connect_retries", DEFAULT_CONNECT_RETRIES))
    timeout_ms = str(int(options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT) * 1000))
    return {
        "ipc.client.connect.max.retries": retries,
        "ipc.client.connect.max.retries.on.timeouts": retries,
        "ipc.client.connect.timeout": timeout_ms,
        "ipc.client.connect.retry.interval": "200",
        "dfs.client.failover.max.attempts": retries,
    }


def hdfs_native_config(options: HdfsOptions) -> dict[str, str]:
    """hdfs-native's Hadoop configuration: bounded NameNode retries, then the user's extra_conf."""
    config = {
        # hdfs-native retries an unreachable NameNode through its failover loop (about 3 minutes by
        # default); these keys bound it, with a short exponential back-off.
        "dfs.client.failover.max.attempts": str(options.get("connect_retries", DEFAULT_CONNECT_RETRIES)),
        "dfs.client.failover.sleep.base.millis": "100",
        "dfs.client.failover.sleep.max.millis": "1000",
    }
    config.update(options.get("extra_conf") or {})
    return config


# -- engine selection ----------------------------------------------------------------------------
def pyarrow_unavailable_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why pyarrow's HadoopFileSystem cannot work here, or None when its libraries can be found.

    Looks for ``libjvm`` and ``libhdfs`` the way Arrow does (``JAVA_HOME``, ``ARROW_LIBHDFS_DIR``,
    ``HADOOP_HOME/lib/native``, the linker path) without loading them: a JVM started in-process
    cannot be stopped, and a failed start can abort the interpreter.
    """
    env = os.environ if environ is None else environ
    try:
        import pyarrow.fs

        pyarrow.fs.HadoopFileSystem  # noqa: B018 - the attribute exists only in HDFS-enabled builds
    except (ImportError, AttributeError):
        return "pyarrow is not installed or was built without HDFS support"
    directories = [
        env.get("ARROW_LIBHDFS_DIR"),
        env.get("HADOOP_HOME") and os.path.join(env["HADOOP_HOME"], "lib", "native"),
    ]
    if not any(
        os.path.exists(os.path.join(d, "libhdfs.so")) for d in directories if d
    ) and not ctypes.util.find_library("hdfs"):
        return (
            "libhdfs.so was not found (looked in ARROW_LIBHDFS_DIR, HADOOP_HOME/lib/native and the linker "
            "path); it ships only in Apache Hadoop's binary distribution"
        )
    java_home = env.get("JAVA_HOME")
    if _java_home_with_libjvm(env) is None and (java_home or not ctypes.util.find_library("jvm")):
        where = f"JAVA_HOME={java_home}" if java_home else "/usr/lib/jvm (JAVA_HOME is not set)"
        return f"no libjvm.so under {where}"
    if not env.get("CLASSPATH") and _hadoop_command(env) is None:
        return (
            "CLASSPATH is not set and there is no 'hadoop' command to compute it: libhdfs's JVM needs "
            "Hadoop's client jars (set CLASSPATH to the output of 'hadoop classpath --glob')"
        )
    return None


def _java_home_with_libjvm(env: Mapping[str, str]) -> str | None:
    """``JAVA_HOME`` if it holds libjvm.so; without it, the first JDK under /usr/lib/jvm that does."""
    java_home = env.get("JAVA_HOME")
    for home in [java_home] if java_home else sorted(glob.glob("/usr/lib/jvm/*")):
        for parts in (("lib", "server"), ("jre", "lib", "amd64", "server")):
            if os.path.exists(os.path.join(home, *parts, "libjvm.so")):
                return home
    return None


def _prepare_jvm_environment() -> None:
    """What libhdfs's in-process JVM reads once, when it starts: ``JAVA_HOME`` and ``CLASSPATH``.

    Arrow finds libjvm only through ``JAVA_HOME`` (or the linker path), so the JDK found by
    :func:`pyarrow_unavailable_reason` is named there. libhdfs does not expand wildcards in
    ``CLASSPATH``; when it is unset it is filled from ``hadoop classpath --glob``, as pyarrow's
    former HDFS client did.
    """
    if not os.environ.get("JAVA_HOME"):
        home = _java_home_with_libjvm(os.environ)
        if home is not None:
            os.environ["JAVA_HOME"] = home
    if os.environ.get("CLASSPATH"):
        return
    command = _hadoop_command(os.environ)
    if command is None:
        return  # pyarrow_unavailable_reason already refused this engine
    try:
        result = subprocess.run(
            [command, "classpath", "--glob"], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise BackendUnavailableError(
            f"the pyarrow HDFS engine needs CLASSPATH; '{command} classpath --glob' failed: {error}"
        ) from error
    os.environ["CLASSPATH"] = result.stdout.strip()


def _hadoop_command(env: Mapping[str, str]) -> str | None:
    """``$HADOOP_HOME/bin/hadoop`` or ``hadoop`` on the PATH."""
    if env.get("HADOOP_HOME"):
        candidate = os.path.join(env["HADOOP_HOME"], "bin", "hadoop")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("hadoop", path=env.get("PATH"))


def hdfs_native_unavailable_reason() -> str | None:
    """Why the hdfs-native engine cannot work here, or None."""
    try:
        import hdfs_native  # noqa: F401
    except ImportError:
        return "the package 'hdfs-native' is not installed (pip install 'artifact-fs[hdfs]')"
    return None


def choose_engine(requested: str = "auto", environ: Mapping[str, str] | None = None) -> str:
    """The engine to use: the requested one if it can work, else a clear error saying why not."""
    if requested not in ENGINES:
        raise ValueError(f"unknown HDFS engine {requested!r}; use one of {ENGINES}")
    if requested == "pyarrow":
        reason = pyarrow_unavailable_reason(environ)
        if reason:
            raise BackendUnavailableError(f"the pyarrow HDFS engine cannot be used: {reason}")
        return "pyarrow"
    native_reason = hdfs_native_unavailable_reason()
    if requested == "hdfs-native":
        if native_reason:
            raise BackendUnavailableError(f"the hdfs-native HDFS engine cannot be used: {native_reason}")
        return "hdfs-native"
    arrow_reason = pyarrow_unavailable_reason(environ)
    if arrow_reason is None:
        return "pyarrow"
    if native_reason is None:
        return "hdfs-native"
    raise BackendUnavailableError(
        f"no HDFS engine can work here: pyarrow: {arrow_reason}; hdfs-native: {native_reason}"
    )


# -- filesystem ----------------------------------------------------------------------------------
def filesystem(options: HdfsOptions) -> AbstractFileSystem:
    """The configured filesystem of the chosen engine."""
    engine = choose_engine(options.get("engine", "auto"))
    if engine == "pyarrow":
        from artifact_fs.backends.hdfs_pyarrow import PyarrowHdfsFileSystem

        _probe_namenode(options)
        _prepare_jvm_environment()
        return PyarrowHdfsFileSystem(
            scheme=options.get("scheme", "hdfs"),
            host=options.get("host"),
            port=options.get("port"),
            arrow_arguments=pyarrow_arguments(options),
        )
    return HdfsNativeFileSystem(
        scheme=options.get("scheme", "hdfs"),
        host=options.get("host"),
        port=options.get("port"),
        user=options.get("user"),
        kerb_ticket=options.get("kerb_ticket"),
        config=hdfs_native_config(options),
        connect_timeout=options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        hadoop_conf_dir=options.get("hadoop_conf_dir"),
    )


def fs_path(uri: ArtifactURI, options: HdfsOptions) -> str:
    """The absolute path inside the filesystem (the URI's path; ``/`` when empty)."""
    path = uri.path or "/"
    return "/" + path.strip("/") if path.strip("/") else "/"


def namenode_url(scheme: str, host: str | None, port: int | None) -> str | None:
    """``hdfs://host[:port]``, or None for the default filesystem of the Hadoop configuration."""
    if not host:
        return None
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _probe_namenode(options: HdfsOptions) -> None:
    """Fail fast when a NameNode given as host:port does not accept connections.

    Only for an explicit port: a host without one may be a nameservice or viewfs cluster, which
    the Hadoop configuration resolves.
    """
    host, port = options.get("host"), options.get("port")
    if not host or not port:
        return
    timeout = options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except TimeoutError as exc:
        raise TimeoutError(
            errno.ETIMEDOUT,
            f"the HDFS NameNode {host}:{port} did not answer within {timeout:g} s "
            "(check the host, the port and any firewall; connect_timeout raises the limit)",
        ) from exc
    except OSError as exc:
        klass = ConnectionRefusedError if isinstance(exc, ConnectionRefusedError) else ConnectionError
        raise klass(
            exc.errno or errno.ECONNREFUSED,
            f"cannot reach the HDFS NameNode {host}:{port}: {exc.strerror or exc} "
            "(is the NameNode running, and is this its RPC port, usually 8020 or 9000?)",
        ) from exc


# -- errors --------------------------------------------------------------------------------------
_ERRNO: dict[type[OSError], int] = {FileNotFoundError: errno.ENOENT, FileExistsError: errno.EEXIST}
_RPC_ERROR = re.compile(r'^RPCError\("(?P<java>[\w.$]+)", "(?P<message>.*)', re.DOTALL)


class HdfsRemoteError(Exception):
    """An exception the NameNode raised, named by its Java class (the error code of errors.py)."""

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(f"{java_class}: {message}")
        self.java_class = java_class
        self.error_code = java_class.rsplit(".", 1)[-1]


def _first_line(text: str) -> str:
    """The message without the Java stack trace the NameNode appends."""
    return text.split("\n\tat ", 1)[0].strip()


def translate(exc: BaseException, path: str | None = None) -> BaseException:
    """An hdfs-native error as a builtin ``OSError`` (or ``ValueError``) with a readable message."""
    if isinstance(exc, OSError) and type(exc).__module__ == "builtins":
        message = _first_line(exc.strerror if exc.strerror else str(exc))
        if "Connection refused" in message or "os error 111" in message:
            result: OSError = ConnectionRefusedError(
                errno.ECONNREFUSED, f"cannot reach the HDFS NameNode: {message}"
            )
        elif isinstance(exc, FileNotFoundError) and message.startswith("Path is not a file"):
            result = IsADirectoryError(errno.EISDIR, message)  # reading a directory
        else:
            result = type(exc)(exc.errno or _ERRNO.get(type(exc), errno.EIO), message)
        if path is not None:
            result.filename = path
        result.__cause__ = exc
        return result
    match = _RPC_ERROR.match(str(exc))
    if match:
        remote = HdfsRemoteError(match.group("java"), _first_line(match.group("message")))
        remote.__cause__ = exc
        return errors.translate(remote, path)
    if isinstance(exc, ValueError | TypeError | NotImplementedError):
        return exc
    return errors.translate(exc, path)


@contextlib.contextmanager
def _translating(path: str | None = None) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        translated = translate(exc, path)
        if translated is exc:
            raise
        raise translated from exc


class ForkGuard:
    """For a client runtime that does not survive ``fork`` (a Rust runtime, an in-process JVM).

    ``check`` refuses use in a process forked after the first use: the child would hang in its
    first call. ``keep_alive`` holds every live client in a forked child, because fsspec empties its
    instance cache there and a dropped client's destructor would call into the missing runtime.
    """

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        self.used_in_pid: int | None = None
        self._live: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._kept_in_child: list[Any] = []
        os.register_at_fork(after_in_child=lambda: self._kept_in_child.extend(self._live.values()))

    def check(self) -> None:
        pid = os.getpid()
        if self.used_in_pid is None:
            self.used_in_pid = pid
        elif self.used_in_pid != pid:
            raise RuntimeError(self.refusal)

    def keep_alive(self, client: Any) -> None:
        self._live[id(client)] = client


NATIVE_FORK_GUARD = ForkGuard(
    "the hdfs-native HDFS engine cannot be used in a process forked after its parent used it "
    "(its connection pool belongs to the parent's runtime and would hang); start workers "
    "with multiprocessing's 'spawn' or 'forkserver' method, or use engine='pyarrow'"
)


class HdfsFileSystemBase(AbstractFileSystem):
    """What both HDFS engines share: MLflow's URL forms, builtin errors, one NameNode call per delete.

    Engines provide ``info``, ``ls``, ``mkdir``, ``makedirs``, ``cat_file``, the primitives
    ``_delete``, ``_rename`` and ``_copy_file``, and a ``file_class`` (an :class:`HdfsFile`);
    ``scheme``, ``host`` and ``port`` name the NameNode.
    """

    protocol = ("hdfs", "viewfs")
    root_marker = "/"
    scheme: str
    host: str | None
    port: int | None
    file_class: type[AbstractBufferedFile]

    @property
    def fsid(self) -> str:
        return f"hdfs_{self.scheme}_{self.host}_{self.port}"

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        for scheme in ("hdfs", "viewfs"):
            if path.startswith(f"{scheme}://"):
                rest = path[len(scheme) + 3 :]
                path = rest[rest.find("/") :] if "/" in rest else "/"
            elif path.startswith(f"{scheme}:"):
                path = path[len(scheme) + 1 :]
        path = "/" + path.strip("/")
        return path

    def unstrip_protocol(self, name: str) -> str:
        base = namenode_url(self.scheme, self.host, self.port) or f"{self.scheme}:"
        return base + self._strip_protocol(name)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        from urllib.parse import urlsplit

        split = urlsplit(path)
        return {"scheme": split.scheme or "hdfs", "host": split.hostname, "port": split.port}

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Only "not found" means False: an unreachable NameNode is an error, not a missing file."""
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def modified(self, path: str) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], tz=datetime.UTC)

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isfile(path):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        self._delete(path, recursive=False)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory; use rm(recursive=True)", path)
        self._delete(path, recursive=False)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """One NameNode call per path (HDFS deletes a tree atomically), globs expanded first."""
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        targets = path if isinstance(path, list) else [path]
        expanded: list[str] = []
        for target in targets:
            stripped = self._strip_protocol(target)
            if any(char in stripped for char in "*?["):
                expanded.extend(self.expand_path(stripped, recursive=False))
            else:
                expanded.append(stripped)
        for item in expanded:
            self._delete(item, recursive=recursive)

    def created(self, path: str) -> datetime.datetime:
        raise NotImplementedError("HDFS records no creation time; use modified()")

    def _delete(self, path: str, recursive: bool) -> None:
        """Delete one path in one NameNode call; ``FileNotFoundError`` when it does not exist."""
        raise NotImplementedError

    def _rename(self, source: str, destination: str) -> None:
        """Rename in one NameNode call, creating the destination's parent (HDFS needs it)."""
        raise NotImplementedError

    def _copy_file(self, source: str, destination: str) -> None:
        """Stream one file's bytes from ``source`` to ``destination`` through this client."""
        raise NotImplementedError

    def mv(
        self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any
    ) -> None:
        """A NameNode rename (atomic); into a directory when the destination is one."""
        if isinstance(path1, list) or isinstance(path2, list) or maxdepth is not None:
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        source, destination = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(destination):
            destination = posixpath.join(destination, posixpath.basename(source))
        self._rename(source, destination)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """HDFS has no server-side copy: stream through this client in 1 MiB chunks."""
        source, destination = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(source):  # a recursive copy lists directories too: recreate them
            self.makedirs(destination, exist_ok=True)
            return
        self._copy_file(source, destination)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AbstractBufferedFile:
        return self.file_class(
            self,
            self._strip_protocol(path),
            mode=mode,
            block_size=block_size or STREAM_CHUNK_SIZE,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )


class HdfsFile(AbstractBufferedFile):
    """fsspec's buffered file on either engine: ranged reads, writes streamed to one writer.

    Engines open ``self._reader`` (before ``super().__init__``, which needs the size) and implement
    ``_fetch_range`` and ``_open_writer``; the writer needs ``write`` and ``close``.
    """

    def __init__(self, fs: HdfsFileSystemBase, path: str, mode: str = "rb", **kwargs: Any) -> None:
        if mode not in {"rb", "wb", "xb"}:
            raise ValueError(f"HDFS files open only as 'rb', 'wb' or 'xb', not {mode!r}")
        self._writer: Any = None
        super().__init__(fs, path, mode=mode, **kwargs)
        if mode != "rb":
            # Create at open, as MLflow's open_output_stream does: a conflict (an existing file for
            # "xb", a parent that is a file) fails here, not at the first flush.
            try:
                self._initiate_upload()
            except BaseException:
                self.closed = True
                raise

    def _open_writer(self) -> Any:
        raise NotImplementedError

    def _initiate_upload(self) -> None:
        if self._writer is None:
            with _translating(self.path):
                self._writer = self._open_writer()

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getvalue()
        with _translating(self.path):
            if data:
                self._writer.write(data)
            if final:
                self._writer.close()
        return True


class HdfsNativeFile(HdfsFile):
    """A buffered file over hdfs-native readers (ranged reads) and writers (streamed blocks)."""

    fs: HdfsNativeFileSystem

    def __init__(self, fs: HdfsNativeFileSystem, path: str, mode: str = "rb", **kwargs: Any) -> None:
        self._reader: Any = None
        if mode == "rb":
            with _translating(path):
                self._reader = fs.client.read(path)
            kwargs["size"] = len(self._reader)
        super().__init__(fs, path, mode=mode, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        with _translating(self.path):
            return self._reader.read_range(start, max(0, min(end, self.size) - start))  # type: ignore[no-any-return]

    def _open_writer(self) -> Any:
        return self.fs._create(self.path, overwrite=self.mode != "xb")


class HdfsNativeFileSystem(HdfsFileSystemBase):
    """fsspec over ``hdfs_native.Client``: builtin errors, fsspec's buffered files, bounded connects.

    hdfs-native's own fsspec class parses paths as URLs (a ``?`` in a name truncates it), lets
    connection errors read as "missing" in ``exists``, copies through a relative temp path and has
    no exclusive create; this class is the small surface fsspec needs, written for those cases.
    """

    file_class = HdfsNativeFile

    def __init__(
        self,
        *,
        scheme: str = "hdfs",
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        kerb_ticket: str | None = None,
        config: dict[str, str] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        hadoop_conf_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from hdfs_native import Client

        self.scheme, self.host, self.port = scheme, host, port
        _check_user(user, kerb_ticket)
        NATIVE_FORK_GUARD.check()
        _probe_namenode({"host": host, "port": port, "connect_timeout": connect_timeout})
        url = namenode_url(scheme, host, port)
        try:
            self.client = Client(url, config or {}, hadoop_conf_dir, kerberos_cache=kerb_ticket)
            NATIVE_FORK_GUARD.keep_alive(self.client)
        except Exception as exc:
            raise _client_error(exc, scheme, host) from exc

    # -- metadata ------------------------------------------------------------------------------
    @staticmethod
    def _entry(status: Any) -> dict[str, Any]:
        is_dir = bool(status.isdir)
        return {
            "name": status.path,
            "size": 0 if is_dir else int(status.length),
            "type": "directory" if is_dir else "file",
            "mtime": status.modification_time / 1000,
            "permission": status.permission,
            "owner": status.owner,
            "group": status.group,
            "replication": status.replication,
            "blocksize": status.blocksize,
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        with _translating(path):
            entry = self._entry(self.client.get_file_info(path))
        entry["name"] = path
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        with _translating(path):
            entries = [self._entry(status) for status in self.client.list_status(path, False)]
        return entries if detail else [entry["name"] for entry in entries]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One streamed recursive listing (HDFS lists a whole tree in one call) unless maxdepth is set."""
        if maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        path = self._strip_protocol(path)
        with _translating(path):
            try:
                top = self.info(path)
            except FileNotFoundError:
                return {} if detail else []
            if top["type"] == "file":
                found = {path: top}
            else:
                found = {path: top} if withdirs and path != "/" else {}
                for status in self.client.list_status(path, True):
                    entry = self._entry(status)
                    if withdirs or entry["type"] == "file":
                        found[entry["name"]] = entry
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    # -- directories ---------------------------------------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "the path already exists", path)
        with _translating(path):
            self.client.mkdirs(path, kwargs.get("permission", 0o755), create_parents)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if not exist_ok and self.exists(path):
            raise FileExistsError(errno.EEXIST, "the path already exists", path)
        with _translating(path):
            self.client.mkdirs(path, 0o755, True)

    def _delete(self, path: str, recursive: bool) -> None:
        with _translating(path):
            deleted = self.client.delete(path, recursive)
        if not deleted:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)

    def _rename(self, source: str, destination: str) -> None:
        with _translating(source):
            self.client.mkdirs(posixpath.dirname(destination) or "/", 0o755, True)
            self.client.rename(source, destination, True)

    # -- data ----------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        with _translating(path):
            reader = self.client.read(path)
            begin, stop = slice_bounds(len(reader), start, end)
            return reader.read_range(begin, stop - begin) if stop > begin else b""

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        with _translating(path):
            writer = self._create(path, overwrite=mode != "create")
            try:
                for offset in range(0, len(value), STREAM_CHUNK_SIZE):
                    writer.write(value[offset : offset + STREAM_CHUNK_SIZE])
            finally:
                writer.close()

    def _create(self, path: str, overwrite: bool) -> Any:
        from hdfs_native import WriteOptions

        write_options = WriteOptions()
        write_options.overwrite = overwrite
        return self.client.create(path, write_options)

    def _copy_file(self, source: str, destination: str) -> None:
        with _translating(source):
            reader = self.client.read(source)
            writer = self._create(destination, overwrite=True)
            try:
                for chunk in reader.read_range_stream(0, len(reader)):
                    writer.write(chunk)
            finally:
                writer.close()


def _check_user(user: str | None, kerb_ticket: str | None) -> None:
    """hdfs-native takes the user from the ticket cache (Kerberos) or HADOOP_USER_NAME (simple auth).

    MLflow passes MLFLOW_KERBEROS_USER to libhdfs; hdfs-native has no per-client user, so a user that
    differs from the one it would send is refused rather than silently ignored.
    """
    if not user or kerb_ticket:
        return
    effective = os.environ.get("HADOOP_USER_NAME") or _login_name()
    if user != effective:
        raise ValueError(
            f"MLFLOW_KERBEROS_USER={user!r} cannot be applied by the hdfs-native engine, which "
            f"connects as {effective!r} (from HADOOP_USER_NAME or the login name): set "
            f"HADOOP_USER_NAME={user} as well, or use engine='pyarrow'"
        )


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _client_error(exc: Exception, scheme: str, host: str | None) -> Exception:
    message = _first_line(str(exc))
    if not host and "defaultFS" in message:
        return ValueError(
            f"{scheme}:/<path> uses the default filesystem of the Hadoop configuration, but no "
            "fs.defaultFS was found: set HADOOP_CONF_DIR (or HADOOP_HOME) to a directory with a "
            f"core-site.xml, or name the NameNode: {scheme}://<host>:<port>/<path>"
        )
    where = redact(namenode_url(scheme, host, None) or f"{scheme}:")
    return ValueError(f"cannot configure the HDFS client for {where}: {message}")
