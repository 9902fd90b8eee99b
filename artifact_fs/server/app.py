"""The ASGI application: MLflow's artifact API over one artifact_fs destination.

``create_app`` builds it for tests and embedding; ``app_from_environment`` is the factory each
uvicorn worker calls (``artifact-fs serve --workers N``), configured only by environment variables,
so workers and replicas share nothing but the store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware

from artifact_fs import settings
from artifact_fs.server import host_policy
from artifact_fs.server.auth import AuthMiddleware, Credentials
from artifact_fs.server.config import ServerConfig
from artifact_fs.server.destination import open_destination
from artifact_fs.server.routes import routes

logger = logging.getLogger("artifact_fs.server")


def create_app(
    destination: str | None = None,
    *,
    config: ServerConfig | None = None,
    credentials: Credentials | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """An artifact server for ``destination`` (default: ``MLFLOW_ARTIFACTS_DESTINATION``).

    Fails at start-up, with the fix in the message, when a variable has a bad value, the destination
    cannot be opened, breaks the host policy, or cannot presign while ``presigned_only`` is asked for.
    """
    env = dict(os.environ if environ is None else environ)
    settings.validate_environment(env)  # every variable, once, before the destination opens
    config = config or ServerConfig.from_environment(env, destination=destination)
    if destination is not None and config.destination != destination:
        config = dataclasses.replace(config, destination=destination)
    host_policy.enforce(config.destination, "artifacts_destination", [config.destination], env)
    opened = open_destination(config.destination, env)
    can_presign = opened.root.supports_multipart_upload and opened.root.supports_presigned_download
    if config.presigned_only and not can_presign:
        raise ValueError(
            f"--artifacts-presigned-only needs a destination that can presign uploads and downloads "
            f"(S3, GCS or Azure); {opened.uri} ({opened.uri.backend}) cannot. Drop the flag or change "
            "the destination."
        )
    credentials = credentials if credentials is not None else Credentials.load(environ=env)
    middleware = [Middleware(AuthMiddleware, credentials=credentials)] if credentials.enabled else []
    app = Starlette(routes=routes(), middleware=middleware)
    app.state.store = opened
    app.state.config = config
    logger.info("serving artifacts from %s", opened.uri)
    return app


def app_from_environment() -> Starlette:
    """The uvicorn factory: one app per worker, from the environment the ``serve`` command exported."""
    return create_app()
