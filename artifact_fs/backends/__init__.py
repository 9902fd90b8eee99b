"""Backend registry: a parsed URI -> a configured fsspec filesystem and a path inside it.

Each backend module (``artifact_fs.backends.<name>``) provides:

* ``CAPABILITIES`` - a :class:`~artifact_fs.capabilities.Capabilities`;
* ``options(uri, environ, **overrides) -> dict`` - MLflow's variables turned into the storage
  options of the underlying filesystem (explicit overrides win);
* ``filesystem(options) -> fsspec.AbstractFileSystem``;
* ``fs_path(uri, options) -> str`` - where ``uri`` points inside that filesystem;
* optionally ``capabilities_of(fs) -> Capabilities`` - ``CAPABILITIES`` narrowed for one
  filesystem (a local root on a network mount).

Modules are imported lazily so a missing optional dependency only affects its own scheme.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from fsspec import AbstractFileSystem

from artifact_fs import uris
from artifact_fs.capabilities import Capabilities

EXTRA_FOR_BACKEND = {
    "s3": "s3",
    "gcs": "gcs",
    "azure": "azure",
    "sftp": "sftp",
    "hdfs": "hdfs",
    "ftp": None,
    "local": None,
    "mlflow_artifacts": None,
    "runs": None,
    "models": None,
}


class BackendUnavailableError(ImportError):
    """The backend for a scheme cannot be used here (its optional dependencies are missing)."""


def load(name: str) -> ModuleType:
    """Import ``artifact_fs.backends.<name>``; a clear error says what to install if that fails."""
    try:
        return importlib.import_module(f"artifact_fs.backends.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("artifact_fs.backends."):
            raise BackendUnavailableError(f"the {name!r} backend is not available in this version") from exc
        extra = EXTRA_FOR_BACKEND.get(name)
        install = f"pip install 'artifact-fs[{extra}]'" if extra else "pip install artifact-fs"
        raise BackendUnavailableError(
            f"the {name!r} backend needs the package {exc.name!r}, which is not installed; run: {install}"
        ) from exc


def capabilities(uri: str | uris.ArtifactURI) -> Capabilities:
    """What the backend serving ``uri`` can do."""
    return load(uris.parse(uri).backend).CAPABILITIES  # type: ignore[no-any-return]


GENERIC_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths", "policy"}
)
"""Options every fsspec filesystem (its instance and listings caches) and every backend take."""


def option_names(name: str) -> frozenset[str]:
    """The storage options the backend ``name`` takes; empty when it passes options on unchecked.

    The keys of the backend's options ``TypedDict`` plus the named parameters of its filesystem
    class (and that class's bases up to the first that takes no ``**kwargs``).
    """
    backend = load(name)
    hints = typing.get_type_hints(backend.options)
    declared = hints.get("return")
    names: set[str] = set(getattr(declared, "__annotations__", {}))
    if "storage_options" in names:
        return frozenset()  # runs:/ and models:/ hand options to whichever store a run uses
    filesystem_class = typing.get_type_hints(backend.filesystem).get("return")
    for klass in getattr(filesystem_class, "__mro__", ()):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return frozenset((names | GENERIC_OPTIONS) - {"self"})


def resolve(
    uri: str | uris.ArtifactURI, environ: Mapping[str, str] | None = None, **overrides: Any
) -> tuple[AbstractFileSystem, str]:
    """The configured filesystem for ``uri`` and the path ``uri`` names inside it.

    A thin view of :func:`artifact_fs.root.open_root`, the one place a URI becomes a filesystem.
    """
    from artifact_fs.root import open_root  # root builds on this module

    root = open_root(uri, environ=environ, **overrides)
    return root.backend_fs, root.path
