"""Where a proxied artifact location lives: MLflow's ``mlflow-artifacts`` resolution rules.

A location is split into the server's *service URL* (``http(s)://host[:port][/prefix]/api/2.0``) and
an artifact path relative to ``<service URL>/mlflow-artifacts/artifacts``. The rules match MLflow's
``MlflowArtifactsRepository.resolve_uri`` (reference §2.13): the tracking URI supplies the scheme,
and, unless the artifact URI names its own host, the host and path prefix; repeated slashes collapse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from artifact_fs import settings, uris

ARTIFACTS_SEGMENT = "/mlflow-artifacts/artifacts"
API_PREFIX = "api/2.0"
_SLASHES = re.compile(r"/{2,}")


def artifact_path_of(uri: str) -> str:
    """The artifact path a ``mlflow-artifacts:``/``http(s):`` URI or bare path names (no server needed)."""
    match = re.match(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):", uri)
    scheme = match.group("scheme").lower() if match else ""
    if scheme in {"http", "https"}:
        path = urlsplit(uri).path
        if ARTIFACTS_SEGMENT not in path:
            raise ValueError(
                f"Invalid proxied artifact URL {uris.redact(uri)!r}: expected "
                f"{scheme}://<host>[:<port>][/<prefix>]/api/2.0{ARTIFACTS_SEGMENT}/<path>"
            )
        path = path.split(ARTIFACTS_SEGMENT, 1)[1]
    elif scheme == "mlflow-artifacts":
        path = urlsplit(uri).path
        path = _SLASHES.sub("/", path).lstrip("/")
        api_root = f"{API_PREFIX}{ARTIFACTS_SEGMENT}"
        if path == api_root or path.startswith(api_root + "/"):
            path = path[len(api_root) :]
    else:
        path = uri
    return _SLASHES.sub("/", path).strip("/")


def service_url(
    uri: str | uris.ArtifactURI | None = None,
    tracking_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The ``http(s)://host[:port][/prefix]/api/2.0`` base every REST call of ``uri`` goes to.

    ``uri`` may be ``None`` (or have no authority): then the tracking URI names the server.
    """
    parsed = uris.parse(uri) if uri is not None else None
    if parsed is not None and parsed.scheme in {"http", "https"}:
        base = parsed.to_string(reveal=True).split("?", 1)[0]
        if ARTIFACTS_SEGMENT not in base:
            raise ValueError(
                f"Invalid proxied artifact URL {parsed}: expected "
                f"{parsed.scheme}://<host>[:<port>][/<prefix>]/api/2.0{ARTIFACTS_SEGMENT}/<path>"
            )
        return base.split(ARTIFACTS_SEGMENT, 1)[0].rstrip("/")
    tracking = tracking_uri or settings.MLFLOW_TRACKING_URI.get(environ)
    track = urlsplit(tracking or "")
    if track.scheme not in {"http", "https"} or not track.netloc:
        shown = uris.redact(tracking) if tracking else "(not set; MLflow's default is sqlite:///mlflow.db)"
        raise ValueError(
            "When an mlflow-artifacts URI was supplied, the tracking URI must be a valid http or https "
            f"URI, but it was {shown}; set MLFLOW_TRACKING_URI (or pass tracking_uri=) to the MLflow "
            "server, e.g. http://localhost:5000"
        )
    if parsed is not None and parsed.has_authority and parsed.netloc:
        if parsed.host and parsed.host.isdigit() and parsed.port is None:
            raise ValueError(
                f"The mlflow-artifacts URI was supplied with a port number: {parsed.host}, "
                "but no host was defined"
            )
        return f"{track.scheme}://{parsed.netloc}/{API_PREFIX}"
    prefix = _SLASHES.sub("/", track.path).rstrip("/")
    return f"{track.scheme}://{track.netloc}{prefix}/{API_PREFIX}"


def deployment_root(service: str) -> str:
    """The server's root URL (where ``/api/3.0/mlflow/server-info`` lives) from its service URL."""
    for suffix in ("/ajax-api/2.0", "/api/2.0"):
        if service.endswith(suffix):
            return service[: -len(suffix)]
    return service
