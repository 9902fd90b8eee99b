"""``artifact-fs serve``: MLflow's artifact server on any artifact_fs destination, run by uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os

import click

from artifact_fs.server import auth

logger = logging.getLogger("artifact_fs.server")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option(
    "--artifacts-destination",
    envvar="MLFLOW_ARTIFACTS_DESTINATION",
    default="./mlartifacts",
    show_default=True,
    help="Where artifacts live: any artifact_fs URI (local path, s3://, gs://, wasbs://, sftp://, ...).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option(
    "--artifacts-presigned-only",
    is_flag=True,
    envvar="MLFLOW_ARTIFACTS_PRESIGNED_ONLY",
    help="Never proxy artifact bytes: clients must use presigned uploads and downloads.",
)
@click.option(
    "--auth-users",
    type=click.Path(exists=True, dir_okay=False),
    envvar=auth.USERS_FILE_VARIABLE,
    help="Require HTTP basic auth; lines of 'user:password' or 'user:pbkdf2_sha256$...'.",
)
@click.option(
    "--auth-tokens",
    type=click.Path(exists=True, dir_okay=False),
    envvar=auth.TOKENS_FILE_VARIABLE,
    help="Accept these bearer tokens (one per line), e.g. MLFLOW_TRACKING_TOKEN values.",
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

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    # Workers build their apps from the environment, so export the whole configuration.
    os.environ["MLFLOW_ARTIFACTS_DESTINATION"] = artifacts_destination
    os.environ["MLFLOW_ARTIFACTS_PRESIGNED_ONLY"] = "true" if artifacts_presigned_only else "false"
    if auth_users:
        os.environ[auth.USERS_FILE_VARIABLE] = os.path.abspath(auth_users)
    if auth_tokens:
        os.environ[auth.TOKENS_FILE_VARIABLE] = os.path.abspath(auth_tokens)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        app = create_app()  # fail here, once, with a clear message, rather than in every worker
    except (ValueError, ImportError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
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
    }
    if workers == 1:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run("artifact_fs.server.app:app_from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]
