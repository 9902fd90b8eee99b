"""The contract between the conformance suite and the backends it runs on.

A backend plugin module ``conformance/backends/<name>.py`` declares ``SPECS`` (a list of
:class:`BackendSpec`, one per deployment, e.g. ``s3-seaweedfs`` and ``s3-moto``) and, for each
spec, a session fixture named ``spec.fixture_name`` that starts the real server and returns a
:class:`BackendUnderTest`. The suite parametrises every test that takes ``backend`` / ``target``
over all specs, marked with ``spec.mark`` so ``pytest conformance -m s3`` selects a backend.

Capabilities are known at collection time (from the spec), so a test marked
``@pytest.mark.need_capability("presign")`` is simply not generated for a backend that lacks it:
an untested feature is invisible, never a skip.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any

from fsspec import AbstractFileSystem

from artifact_fs.capabilities import Capabilities


@dataclass(frozen=True)
class BackendSpec:
    """One deployment of one backend, known before any server starts."""

    id: str
    """Shown in test ids: ``local``, ``s3-seaweedfs``, ``s3-moto``, ``azure-wasbs`` ..."""
    mark: str
    """The pytest marker that selects it (``local``, ``s3``, ``azure`` ...)."""
    capabilities: Capabilities
    """The backend's capabilities, narrowed for what this server lacks."""
    xfail: dict[str, str] = field(default_factory=dict)
    """Strict xfails for known server deviations: test name -> reason."""

    @property
    def fixture_name(self) -> str:
        return "backend_" + self.id.replace("-", "_")


@dataclass
class BackendUnderTest:
    """A running deployment: where to write, and how to configure artifact_fs for it."""

    spec: BackendSpec
    root_url: str
    """An artifact URI under which every test gets its own fresh prefix."""
    storage_options: dict[str, Any] = field(default_factory=dict)
    """Explicit options for ``artifact_fs.url_to_fs`` / ``ArtifactStore`` (endpoint, credentials)."""
    environ: dict[str, str] = field(default_factory=dict)
    """The same configuration as MLflow environment variables (for subprocess clients)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Anything a backend-specific test needs (SDK client factory, server log path, ...)."""

    @property
    def capabilities(self) -> Capabilities:
        return self.spec.capabilities

    def fresh_url(self) -> str:
        """A new, empty artifact URI under the root (OpenDAL-style random prefix)."""
        return self.root_url.rstrip("/") + "/" + uuid.uuid4().hex[:12]


@dataclass
class Target:
    """One test's fresh, empty location on one backend."""

    backend: BackendUnderTest
    url: str
    fs: AbstractFileSystem
    root: str

    def path(self, *parts: str) -> str:
        """A path inside the fresh root, in the filesystem's own terms."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def store(self, **options: Any) -> Any:
        from artifact_fs.store import ArtifactStore

        return ArtifactStore(self.url, **{**self.backend.storage_options, **options})
