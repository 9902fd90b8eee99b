"""The server's one artifact destination: an :class:`~artifact_fs.root.ArtifactRoot` and its store.

The server is a client of the store: list, delete, stat, open and write go through
:class:`~artifact_fs.store.ArtifactStore` (MLflow's repository rules live there, once), and presigned
transfers through the root's generic backend hooks. It never asks which backend it talks to.
"""

from __future__ import annotations

from collections.abc import Mapping

from artifact_fs import qualify
from artifact_fs.root import open_root
from artifact_fs.store import ArtifactStore


def open_destination(uri: str, environ: Mapping[str, str]) -> ArtifactStore:
    """The store over ``uri`` (a relative local path becomes absolute, as MLflow's server does)."""
    root = open_root(qualify.resolve_uri_if_local(uri), environ=environ)
    if root.capabilities.empty_directories:
        root.backend_fs.makedirs(root.path or "/", exist_ok=True)
    return ArtifactStore(root=root)
