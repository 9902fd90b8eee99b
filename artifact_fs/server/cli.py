"""``artifact-fs serve``: MLflow's artifact server on any artifact_fs destination, run by uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import NoReturn

import click

from artifact_fs import settings
from artifact_fs.server import auth

logger = logging.getLogger("artifact_fs.server")
PROGRAM = "artifact-fs serve"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(message: str, status: int = 1) -> NoReturn:
    """Refuse to start with one line on stderr (not a traceback, not uvicorn's log)."""
    click.echo(f"{PROGRAM}: error: {' '.join(message.split())}", err=True)
    sys.exit(status)


def _stopped(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM after uvicorn's graceful shutdown: a requested stop, so exit status 0.

    uvicorn restores the handler it found and raises the signal again once it has shut down; with
    the default handler the process would die by SIGTERM, which supervisors report as a failure.
    """
    sys.exit(0)


def _check_address_is_free(host: str, port: int) -> None:
    """Bind and release the address uvicorn will bind (with its ``SO_REUSEADDR``), so a busy port is
    one line before any work rather than a started app and uvicorn's error log."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            _fail(f"cannot listen on {host}:{port}: {reason}; stop what uses it or choose another --port")


@click.command("serve")
@click.option(
    "--artifacts-destination",
    envvar=settings.MLFLOW_ARTIFACTS_DESTINATION.name,
    default=settings.MLFLOW_ARTIFACTS_DESTINATION.default,
    show_default=True,
    help="Where artifacts live: any artifact_fs URI (local path, s3://, gs://, wasbs://, sftp://, ...).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option(
    "--artifacts-presigned-only",
    is_flag=True,
    help="Never proxy artifact bytes: clients must use presigned uploads and downloads. "
    "[env var: MLFLOW_ARTIFACTS_PRESIGNED_ONLY, parsed as MLflow does]",
)
@click.option(
    "--auth-users",
    type=click.Path(exists=True, dir_okay=False),
    help="Require HTTP basic auth; lines of 'user:password' or 'user:pbkdf2_sha256$...'. "
    "[env var: ARTIFACT_FS_SERVER_USERS_FILE]",
)
@click.option(
    "--auth-tokens",
    type=click.Path(exists=True, dir_okay=False),
    help="Accept these bearer tokens (one per line), e.g. MLFLOW_TRACKING_TOKEN values. "
    "[env var: ARTIFACT_FS_SERVER_TOKENS_FILE]",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(  # noqa: PLR0917 - click passes every option positionally by name
    artifacts_destination: str,
    host: str,
    port: int,
    workers: int,
    artifacts_presigned_only: bool,
    auth_users: str | None,
    auth_tokens: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    log_level: str,
) -> None:
    """Serve MLflow's artifact API (/api/2.0/mlflow-artifacts/...) on ARTIFACTS_DESTINATION.

    MLflow clients use it as a tracking server's artifact proxy: point `mlflow server
    --default-artifact-root` at http://HOST:PORT/api/2.0/mlflow-artifacts/artifacts, or use it
    directly as an http:// artifact URI.
    """
    import uvicorn

    from artifact_fs.server.app import create_app
    from artifact_fs.server.protocol import default_protocol

    settings.exit_if_environment_is_invalid(PROGRAM)  # before any work: one line, exit 2
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    _check_address_is_free(host, port)
    presigned_only = artifacts_presigned_only or settings.MLFLOW_ARTIFACTS_PRESIGNED_ONLY.get()
    # Workers build their apps from the environment, so export the whole configuration.
    os.environ[settings.MLFLOW_ARTIFACTS_DESTINATION.name] = artifacts_destination
    os.environ[settings.MLFLOW_ARTIFACTS_PRESIGNED_ONLY.name] = "true" if presigned_only else "false"
    if auth_users:
        os.environ[settings.ARTIFACT_FS_SERVER_USERS_FILE.name] = os.path.abspath(auth_users)
    if auth_tokens:
        os.environ[settings.ARTIFACT_FS_SERVER_TOKENS_FILE.name] = os.path.abspath(auth_tokens)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        app = create_app()  # fail here, once, with a clear message, rather than in every worker
    except (ValueError, ImportError, OSError) as exc:
        _fail(str(exc))
    credentials = auth.Credentials.load()
    if not credentials.enabled and not _is_loopback(host):
        click.secho(
            f"WARNING: serving artifacts on {host} WITHOUT AUTHENTICATION: anyone who can reach this "
            "address can read, write and delete every artifact. Use --auth-users/--auth-tokens, or bind "
            "127.0.0.1 behind an authenticating proxy.",
            fg="red",
            bold=True,
            err=True,
        )
    scheme = "https" if tls_cert else "http"
    click.echo(
        f"artifact-fs: serving {artifacts_destination} at {scheme}://{host}:{port}/api/2.0/mlflow-artifacts"
    )
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
        "timeout_graceful_shutdown": 5,
        # httptools (h11 without it) with a header deadline and MLflow-shaped 400/431s (server/protocol.py)
        "http": default_protocol(),
    }
    signal.signal(signal.SIGTERM, _stopped)  # SIGINT already ends uvicorn.run with status 0
    if workers == 1:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run("artifact_fs.server.app:app_from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]
