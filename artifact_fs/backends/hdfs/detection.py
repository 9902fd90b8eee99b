"""Which HDFS engine can work here, and the environment libhdfs's JVM needs.

``engine="auto"`` takes pyarrow when its native libraries can be found and hdfs-native otherwise.
The check only looks for files and never starts a JVM, so it cannot crash or hang the process: a
JVM started in-process cannot be stopped, and a failed start can abort the interpreter.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import shutil
import subprocess
from collections.abc import Mapping

from artifact_fs import settings
from artifact_fs.backends import BackendUnavailableError
from artifact_fs.backends.hdfs.config import ENGINES

HADOOP_CLASSPATH_TIMEOUT = 60.0
"""Seconds ``hadoop classpath --glob`` may take (it starts a JVM of its own)."""


def pyarrow_unavailable_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why pyarrow's HadoopFileSystem cannot work here, or None when its libraries can be found.

    Looks for ``libjvm`` and ``libhdfs`` the way Arrow does (``JAVA_HOME``, ``ARROW_LIBHDFS_DIR``,
    ``HADOOP_HOME/lib/native``, the linker path) without loading them; ``environ`` defaults to the
    process environment, which libhdfs's JVM reads.
    """
    try:
        import pyarrow.fs

        pyarrow.fs.HadoopFileSystem  # noqa: B018 - the attribute exists only in HDFS-enabled builds
    except (ImportError, AttributeError):
        return "pyarrow is not installed or was built without HDFS support"
    hadoop_home = settings.HADOOP_HOME.get(environ)
    directories = [
        settings.ARROW_LIBHDFS_DIR.get(environ),
        hadoop_home and os.path.join(hadoop_home, "lib", "native"),
    ]
    if not any(
        os.path.exists(os.path.join(d, "libhdfs.so")) for d in directories if d
    ) and not ctypes.util.find_library("hdfs"):
        return (
            "libhdfs.so was not found (looked in ARROW_LIBHDFS_DIR, HADOOP_HOME/lib/native and the linker "
            "path); it ships only in Apache Hadoop's binary distribution"
        )
    java_home = settings.JAVA_HOME.get(environ)
    if java_home_with_libjvm(environ) is None and (java_home or not ctypes.util.find_library("jvm")):
        where = f"JAVA_HOME={java_home}" if java_home else "/usr/lib/jvm (JAVA_HOME is not set)"
        return f"no libjvm.so under {where}"
    if not settings.CLASSPATH.get(environ) and hadoop_command(environ) is None:
        return (
            "CLASSPATH is not set and there is no 'hadoop' command to compute it: libhdfs's JVM needs "
            "Hadoop's client jars (set CLASSPATH to the output of 'hadoop classpath --glob')"
        )
    return None


def java_home_with_libjvm(env: Mapping[str, str] | None = None) -> str | None:
    """``JAVA_HOME`` if it holds libjvm.so; without it, the first JDK under /usr/lib/jvm that does."""
    java_home = settings.JAVA_HOME.get(env)
    for home in [java_home] if java_home else sorted(glob.glob("/usr/lib/jvm/*")):
        for parts in (("lib", "server"), ("jre", "lib", "amd64", "server")):
            if os.path.exists(os.path.join(home, *parts, "libjvm.so")):
                return home
    return None


def hadoop_command(env: Mapping[str, str] | None = None) -> str | None:
    """``$HADOOP_HOME/bin/hadoop`` or ``hadoop`` on the PATH."""
    hadoop_home = settings.HADOOP_HOME.get(env)
    if hadoop_home:
        candidate = os.path.join(hadoop_home, "bin", "hadoop")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("hadoop", path=settings.PATH.get(env))


def prepare_jvm_environment() -> None:
    """What libhdfs's in-process JVM reads once, when it starts: ``JAVA_HOME`` and ``CLASSPATH``.

    Arrow finds libjvm only through ``JAVA_HOME`` (or the linker path), so the JDK found by
    :func:`pyarrow_unavailable_reason` is named there. libhdfs does not expand wildcards in
    ``CLASSPATH``; when it is unset it is filled from ``hadoop classpath --glob``, as pyarrow's
    former HDFS client did.
    """
    if not settings.JAVA_HOME.get():
        home = java_home_with_libjvm()
        if home is not None:
            os.environ[settings.JAVA_HOME.name] = home
    prepare_jvm_kerberos()
    if settings.CLASSPATH.get():
        add_conf_dir_to_classpath()
        return
    command = hadoop_command()
    if command is None:
        return  # pyarrow_unavailable_reason already refused this engine
    try:
        result = subprocess.run(
            [command, "classpath", "--glob"],
            capture_output=True,
            text=True,
            timeout=HADOOP_CLASSPATH_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise BackendUnavailableError(
            f"the pyarrow HDFS engine needs CLASSPATH; '{command} classpath --glob' failed: {error}"
        ) from error
    os.environ[settings.CLASSPATH.name] = result.stdout.strip()
    add_conf_dir_to_classpath()


def add_conf_dir_to_classpath() -> None:
    """``HADOOP_CONF_DIR`` first on ``CLASSPATH``, as Hadoop's scripts put it: libhdfs's JVM reads
    core-site.xml (``hadoop.security.authentication``) and hdfs-site.xml only from there."""
    conf_dir, classpath = settings.HADOOP_CONF_DIR.get(), settings.CLASSPATH.get() or ""
    if conf_dir and conf_dir not in classpath.split(os.pathsep):
        os.environ[settings.CLASSPATH.name] = os.pathsep.join(filter(None, [conf_dir, classpath]))


def prepare_jvm_kerberos() -> None:
    """Java reads krb5.conf from ``java.security.krb5.conf``, not ``KRB5_CONFIG``: pass it on in
    ``LIBHDFS_OPTS`` (the options of the JVM libhdfs starts) unless the user set that property."""
    krb5_config, options = settings.KRB5_CONFIG.get(), settings.LIBHDFS_OPTS.get() or ""
    if krb5_config and "java.security.krb5.conf" not in options:
        os.environ[settings.LIBHDFS_OPTS.name] = f"{options} -Djava.security.krb5.conf={krb5_config}".strip()


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
