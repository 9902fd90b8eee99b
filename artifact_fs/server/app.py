"""The ASGI application: MLflow's artifact API over one artifact_fs destination.

``create_app`` builds it for tests and embedding; ``app_from_environment`` is the factory each
uvicorn worker calls (``artifact-fs serve --workers N``), configured only by environment variables,
so workers and replicas share nothing but the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from artifact_fs import settings
from artifact_fs.server import host_policy
from artifact_fs.server.auth import AuthMiddleware, Credentials
from artifact_fs.server.config import ServerConfig
from artifact_fs.server.destination import open_destination
from artifact_fs.server.routes import routes
from artifact_fs.server.transfer import InFlightUploads

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
    uploads = InFlightUploads()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # uvicorn cancels what is still running after its graceful timeout; abort what remains open
        if len(uploads):
            await run_in_threadpool(uploads.abandon_all)

    app = Starlette(
        routes=routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={404: _http_exception, 405: _http_exception},
    )
    app.state.store = opened
    app.state.config = config
    app.state.uploads = uploads
    logger.info("serving artifacts from %s", opened.uri)
    return app


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Unknown endpoints and methods answer in MLflow's JSON error shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    code = "ENDPOINT_NOT_FOUND" if status == 404 else "BAD_REQUEST"
    return JSONResponse(
        {"error_code": code, "message": f"{request.method} {request.url.path}: {exc}"}, status
    )


def app_from_environment() -> Starlette:
    """The uvicorn factory: one app per worker, from the environment the ``serve`` command exported."""
    return create_app()
