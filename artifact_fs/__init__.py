"""artifact_fs: every MLflow artifact store behind one fsspec-native interface.

>>> import artifact_fs
>>> fs, path = artifact_fs.url_to_fs("s3://bucket/0/run/artifacts")   # MLflow's env vars applied
>>> store = artifact_fs.ArtifactStore("./mlartifacts/0/run/artifacts")  # MLflow's repository API
"""

from __future__ import annotations

import atexit
import sys
from typing import TYPE_CHECKING, Any

from artifact_fs.backends import BackendUnavailableError, resolve
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.uris import ArtifactURI, parse

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.core import OpenFile

    from artifact_fs.store import ArtifactStore, FileInfo

__all__ = [
    "ArtifactStore",
    "ArtifactURI",
    "BackendUnavailableError",
    "Capabilities",
    "FileInfo",
    "InvalidArtifactPathError",
    "open",
    "parse",
    "register",
    "unregister",
    "url_to_fs",
]
__version__ = "0.1.0"


@atexit.register
def _collect_before_exit() -> None:
    """Free unreachable objects while the interpreter still runs, where pyarrow is in use.

    pandas and pyarrow read and write artifact URLs through ``PythonFile``: Arrow's I/O threads call
    into the fsspec file (a reference cycle: its cache holds its own ``_fetch_range``). Left to the
    collection during interpreter shutdown, those objects went with libstdc++'s "terminate called
    without an active exception" and SIGABRT after the script had finished (apache/arrow#34314):
    4 of 24 runs of docs/data-tools.md's first example, 0 of 24 with this collection first.
    """
    import gc  # here: the package's own ``gc`` subpackage (``artifact-fs gc``) takes the name above

    if "pyarrow" in sys.modules:
        gc.collect()


def url_to_fs(uri: str | ArtifactURI, **options: Any) -> tuple[AbstractFileSystem, str]:
    """The MLflow-configured fsspec filesystem for ``uri`` and the path inside it.

    ``options`` are storage options that win over MLflow's environment variables.
    """
    return resolve(uri, **options)


def open(
    uri: str | ArtifactURI, mode: str = "rb", *, open_options: dict[str, Any] | None = None, **options: Any
) -> OpenFile:
    """An ``fsspec.core.OpenFile`` for ``uri`` (use it as a context manager)."""
    from fsspec.core import OpenFile

    fs, path = resolve(uri, **options)
    return OpenFile(fs, path, mode=mode, **(open_options or {}))


def register(*, clobber: bool = False) -> None:
    """Opt in: make plain ``fsspec`` calls on MLflow schemes use artifact_fs's filesystems.

    Without ``clobber`` only schemes nobody else owns are registered (``mlflow-artifacts``,
    ``runs``); with it, ``s3``, ``gs``, ``wasbs``, ``abfss``, ``ftp``, ``sftp`` and ``hdfs`` follow
    MLflow's variables too.
    """
    from artifact_fs.registration import register as _register

    _register(clobber=clobber)


def unregister() -> None:
    """Undo ``register(clobber=True)``: ``s3``, ``gs``, ... resolve to fsspec's own classes again."""
    from artifact_fs.registration import unregister as _unregister

    _unregister()


def __getattr__(name: str) -> Any:
    if name in {"ArtifactStore", "FileInfo"}:
        from artifact_fs import store

        return getattr(store, name)
    raise AttributeError(f"module 'artifact_fs' has no attribute {name!r}")
