"""MLflow's artifact server (the proxied ``mlflow-artifacts`` API) over any artifact_fs destination.

Needs the ``server`` extra (Starlette, uvicorn): ``pip install 'artifact-fs[server]'``.
"""

from __future__ import annotations

from artifact_fs.server.app import app_from_environment, create_app
from artifact_fs.server.auth import Credentials
from artifact_fs.server.config import ServerConfig

__all__ = ["Credentials", "ServerConfig", "app_from_environment", "create_app"]
