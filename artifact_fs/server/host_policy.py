"""MLflow's server-side SSRF policy for artifact locations (``host_policy.py``, GHSA-mr9f-g8qf-4w4j).

A location whose scheme makes the server connect to a host of the caller's choosing (``http``,
``sftp``, ``hdfs``, ...) is accepted only if it targets the same (family, host, port) as a location
the operator configured (the destination), or its scheme is listed in
``MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES``. Malformed authorities are never trusted.
The server applies it to its destination at start-up and to any location a caller supplies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from artifact_fs import settings, uris

HOST_ADDRESSED_SCHEMES = frozenset(
    {"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"}
)
_FAMILY = {"viewfs": "hdfs", "https": "http", "mlflow-artifacts": "http"}
_DEFAULT_PORTS: dict[str, tuple[int | None, ...]] = {
    "ftp": (21,),
    "sftp": (22,),
    "http": (80,),
    "https": (443,),
    "mlflow-artifacts": (80, 443),
    "r2": (443,),
    "b2": (443,),
    "abfss": (443,),
    "hdfs": (None,),
    "viewfs": (None,),
}

Target = tuple[str, str, int | None]


class MalformedAuthorityError(ValueError):
    """An authority (netloc) that cannot be trusted to name one host."""


def targets(uri: str) -> frozenset[Target]:
    """Every (family, host, port) ``uri`` may connect to; empty when it selects no host."""
    split = urlsplit(uri)
    scheme = split.scheme.lower()
    if scheme not in HOST_ADDRESSED_SCHEMES or not split.netloc:
        return frozenset()
    if "\\" in split.netloc or any(c.isspace() for c in split.netloc):
        raise MalformedAuthorityError(f"the authority of {uris.redact(uri)!r} is malformed")
    try:
        port = split.port
    except ValueError as exc:
        raise MalformedAuthorityError(f"the port of {uris.redact(uri)!r} is invalid") from exc
    host = (split.hostname or "").lower()
    if not host:
        return frozenset()
    family = _FAMILY.get(scheme, scheme)
    ports = (port,) if port is not None else _DEFAULT_PORTS[scheme]
    return frozenset((family, host, p) for p in ports)


def enforce(uri: str, field: str, trusted: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Raise ``ValueError`` (HTTP 400) unless ``uri`` may be used by this server as ``field``."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in HOST_ADDRESSED_SCHEMES:
        return
    allowed = {
        s.strip().lower() for s in settings.MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES.get(environ)
    }
    hint = (
        f"Set the {settings.MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES.name} environment variable "
        "on the server to allow it."
    )
    try:
        wanted = targets(uri)
    except MalformedAuthorityError as exc:
        raise ValueError(f"'{field}' cannot use the '{scheme}' scheme: {exc}. {hint}") from exc
    if not wanted or scheme in allowed:
        return
    trusted_targets: set[Target] = set()
    for root in trusted:
        try:
            trusted_targets |= targets(root)
        except MalformedAuthorityError:
            continue
    if wanted & trusted_targets:
        return
    raise ValueError(
        f"'{field}' cannot use the '{scheme}' scheme: {uris.redact(uri)!r} targets a host other than "
        f"the server's configured artifact locations. {hint}"
    )
