"""Opt-in registration of artifact_fs's filesystems with fsspec (``artifact_fs.register()``).

``mlflow-artifacts``, ``runs`` and ``models`` are ours and are also declared as ``fsspec.specs`` entry
points, so plain fsspec finds them without this call. ``register(clobber=True)`` additionally makes ``s3``,
``gs``, ``wasbs``, ``abfss``, ``ftp``, ``sftp``, ``hdfs`` and ``viewfs`` follow MLflow's variables
for every fsspec user in the process; it is never done implicitly (DESIGN.md, "Who owns which URL
scheme"). :func:`unregister` puts fsspec's own classes back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.registry import _registry
from fsspec.spec import AbstractFileSystem

from artifact_fs import backends, uris

OWN_SCHEMES: dict[str, str] = {
    "mlflow-artifacts": "artifact_fs.backends.mlflow_artifacts.MlflowArtifactsFileSystem",
    "runs": "artifact_fs.backends.runs.RunsFileSystem",
    "models": "artifact_fs.backends.models.ModelsFileSystem",
}
SHARED_SCHEMES = ("s3", "gs", "wasbs", "abfss", "ftp", "sftp", "hdfs", "viewfs")
_replaced: dict[str, type | None] = {}


def _mlflow_configured(scheme: str) -> type[AbstractFileSystem]:
    """An fsspec class for ``scheme`` whose instances are artifact_fs's MLflow-configured filesystem.

    ``_get_kwargs_from_urls`` keeps the URL's location (``s3://bucket/``); constructing the class
    returns ``artifact_fs.url_to_fs(location, **storage_options)[0]``, so ``_strip_protocol`` and
    every method are the backend's own.
    """

    class MlflowConfigured(AbstractFileSystem):
        protocol = (scheme,)

        def __new__(cls, *args: Any, artifact_location: str | None = None, **storage_options: Any) -> Any:  # type: ignore[misc]
            if artifact_location is None:
                raise ValueError(
                    f"artifact_fs's {scheme!r} filesystem is configured from a URL; use "
                    f"fsspec.url_to_fs('{scheme}://...') or artifact_fs.url_to_fs instead of "
                    f"fsspec.filesystem({scheme!r})"
                )
            fs, _ = backends.resolve(artifact_location, **storage_options)
            return fs

        @staticmethod
        def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
            split = urlsplit(path)
            return {"artifact_location": f"{split.scheme}://{split.netloc}/"}

    MlflowConfigured.__name__ = MlflowConfigured.__qualname__ = f"MlflowConfigured_{scheme}"
    return MlflowConfigured


def register(*, clobber: bool = False) -> None:
    """Register ``mlflow-artifacts``, ``runs`` and ``models``; with ``clobber`` also others' schemes."""
    for scheme, target in OWN_SCHEMES.items():
        fsspec.register_implementation(scheme, target, clobber=True)
    if not clobber:
        return
    for scheme in SHARED_SCHEMES:
        if uris.BACKEND_FOR_SCHEME.get(scheme) is None:
            continue
        _replaced.setdefault(scheme, _registry.get(scheme))
        fsspec.register_implementation(scheme, _mlflow_configured(scheme), clobber=True)


def unregister() -> None:
    """Undo ``register(clobber=True)``: the shared schemes resolve to fsspec's classes again."""
    for scheme, previous in list(_replaced.items()):
        if previous is None:
            _registry.pop(scheme, None)
        else:
            _registry[scheme] = previous
        del _replaced[scheme]
