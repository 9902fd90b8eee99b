"""Local paths and NFS mounts (a mounted path is local): fsspec's local filesystem.

(First version; atomic writes and containment are added by the foundation work.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict

from fsspec.implementations.local import LocalFileSystem

from artifact_fs.capabilities import Capabilities
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=True,
    atomic_write=True,
    exclusive_create=True,
    server_side_copy=True,
    range_read=True,
)


class LocalOptions(TypedDict, total=False):
    auto_mkdir: bool


def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> LocalOptions:
    result: LocalOptions = {"auto_mkdir": True}
    result.update(overrides)  # type: ignore[typeddict-item]
    return result


def filesystem(options: LocalOptions) -> LocalFileSystem:
    return LocalFileSystem(**options)


def fs_path(uri: ArtifactURI, options: LocalOptions) -> str:
    return os.path.abspath(uri.local_path)
