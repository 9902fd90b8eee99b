"""Artifact roots qualified exactly as MLflow qualifies them, and the double-qualification check.

MLflow stores a run's artifact root as ``<experiment artifact_location>/<run_id>/artifacts`` and an
experiment's location as ``<default artifact root>/<experiment_id>`` (reference §4). The endpoint of
an S3-compatible store is per-process configuration (``MLFLOW_S3_ENDPOINT_URL``) and never part of
a stored URI; mixing the two "qualifies" a bucket and key twice (MLflow docs warning, PR #5570).
:func:`check_endpoint_url` and :func:`check_root_not_qualified_twice` turn that warning into errors.
"""

from __future__ import annotations

import functools
import pathlib
import posixpath
from urllib.parse import unquote, urlparse, urlsplit, urlunparse

from artifact_fs import uris


def _join_appending_absolute(prefix: str, suffix: str) -> str:
    """POSIX join where an absolute suffix is appended, not substituted (MLflow's rule)."""
    if not prefix:
        return suffix
    return posixpath.join(prefix, suffix.lstrip("/"))


def _validate_query(query: str) -> None:
    decoded = query
    for _ in range(10):
        unquoted = unquote(decoded)
        if unquoted == decoded:
            break
        decoded = unquoted
    if ".." in decoded:
        raise ValueError(f"Invalid query string {query!r}: '..' is not allowed in an artifact URI's query")


def append_to_uri_path(uri: str, *paths: str) -> str:
    """Append ``paths`` to the path of ``uri``, keeping scheme, authority and query (MLflow semantics).

    >>> append_to_uri_path("s3://bucket/root", "0")
    's3://bucket/root/0'
    >>> append_to_uri_path("mlflow-artifacts:/", "0")
    'mlflow-artifacts:/0'
    """
    suffix = functools.reduce(_join_appending_absolute, paths, "")
    parsed = urlparse(uri)
    _validate_query(parsed.query)
    if not parsed.scheme:
        return _join_appending_absolute(uri, suffix)
    prefix = ""
    if not parsed.path.startswith("/"):
        # urlunparse would turn "file:relative" into an absolute path; keep the relative form.
        prefix = parsed.scheme + ":"
        parsed = parsed._replace(scheme="")
    return prefix + urlunparse(parsed._replace(path=_join_appending_absolute(parsed.path, suffix)))


def resolve_uri_if_local(uri: str) -> str:
    """Make a relative local root absolute against the CWD of the process that creates it.

    ``./mlruns`` -> ``/cwd/mlruns``; ``file:./mlruns`` -> ``file:///cwd/mlruns``; others unchanged.
    """
    parsed = uris.parse(uri)
    if not parsed.is_local:
        return uri
    cwd = pathlib.Path.cwd()
    if parsed.scheme == "":
        return cwd.joinpath(uri).absolute().as_posix()
    local = pathlib.Path(parsed.local_path)
    if local.is_absolute():
        return uri
    return cwd.joinpath(local).absolute().as_uri()


def experiment_artifact_location(default_artifact_root: str, experiment_id: str | int) -> str:
    """``<default root>/<experiment_id>``, with a relative local root made absolute first."""
    return append_to_uri_path(resolve_uri_if_local(default_artifact_root), str(experiment_id))


def run_artifact_root(experiment_location: str, run_id: str) -> str:
    """``<experiment artifact_location>/<run_id>/artifacts``."""
    return append_to_uri_path(experiment_location, run_id, "artifacts")


def logged_model_artifact_root(experiment_location: str, model_id: str) -> str:
    """``<experiment artifact_location>/models/<model_id>/artifacts`` (MLflow 3 logged models)."""
    return append_to_uri_path(experiment_location, "models", model_id, "artifacts")


def check_endpoint_url(variable: str, value: str) -> str:
    """Refuse an S3-style endpoint that would qualify buckets and keys twice; return it normalised.

    An endpoint is ``http(s)://host[:port]`` and nothing more: the bucket and key live in the
    artifact URI (``s3://bucket/key``), never in the endpoint.
    """
    split = urlsplit(value)
    shown = uris.redact(value)
    fix = (
        f"set {variable} to the service address only, e.g. http://127.0.0.1:9000, and put the bucket "
        "and path in the artifact URI, e.g. s3://<bucket>/<path>"
    )
    if split.scheme.lower() in {"s3", "s3a", "s3n", "gs", "wasbs", "abfss"}:
        raise ValueError(f"{variable}={shown!r} is an artifact URI, not an endpoint URL: {fix}")
    if split.scheme.lower() not in {"http", "https"} or not split.hostname:
        raise ValueError(f"{variable}={shown!r} is not an http(s) URL with a host: {fix}")
    if split.path not in {"", "/"}:
        raise ValueError(
            f"{variable}={shown!r} has a path ({split.path!r}); the store would qualify the bucket and "
            f"key twice (<endpoint>/<bucket>/<key>/<bucket>/<key>): {fix}"
        )
    if split.query or split.fragment:
        raise ValueError(f"{variable}={shown!r} has a query or fragment: {fix}")
    if split.username or split.password:
        raise ValueError(
            f"{variable}={shown!r} carries credentials; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            f"or a profile instead: {fix}"
        )
    try:
        split.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(f"{variable}={shown!r} has an invalid port: {fix}") from exc
    return value.rstrip("/")


def _netloc(value: str) -> str:
    split = urlsplit(value)
    host = (split.hostname or "").lower()
    return f"{host}:{split.port}" if split.port else host


def check_root_not_qualified_twice(root: str | uris.ArtifactURI, endpoint_url: str | None = None) -> None:
    """Refuse an artifact root that repeats the endpoint or the bucket (MLflow's double qualification).

    Caught: the endpoint URL used as the artifact root (``http://<endpoint>/<bucket>/...``), an
    ``http(s)`` URL of an S3 service used as a root, an ``s3://`` key that contains the endpoint or a
    scheme, and a key that repeats ``<prefix>/<bucket>/<prefix>``.
    """
    parsed = uris.parse(root)
    shown = str(parsed)
    if parsed.scheme in {"http", "https"}:
        if uris.MLFLOW_ARTIFACTS_API in parsed.path:
            return
        host = (parsed.host or "").lower()
        endpoint_netloc = _netloc(endpoint_url) if endpoint_url else None
        root_netloc = f"{host}:{parsed.port}" if parsed.port else host
        if endpoint_netloc and root_netloc == endpoint_netloc:
            raise ValueError(
                f"artifact root {shown!r} is the S3 endpoint URL; artifact_fs would qualify the bucket and "
                "key twice. Use s3://<bucket>/<path> as the artifact root and keep the endpoint in "
                "MLFLOW_S3_ENDPOINT_URL"
            )
        if host.endswith(".amazonaws.com") and ".s3" in f".{host}":
            raise ValueError(
                f"artifact root {shown!r} is an S3 HTTP URL; use s3://<bucket>/<path> instead "
                "(the endpoint comes from MLFLOW_S3_ENDPOINT_URL / the AWS configuration)"
            )
        return
    if parsed.scheme not in {"s3", "gs"}:
        return
    key = parsed.key
    if "://" in key or key.startswith(("http:", "https:")):
        raise ValueError(f"artifact root {shown!r} has a URL inside its key; the root was qualified twice")
    if endpoint_url:
        endpoint_netloc = _netloc(endpoint_url)
        if endpoint_netloc and endpoint_netloc in key.lower().split("/"):
            raise ValueError(
                f"artifact root {shown!r} contains the endpoint {endpoint_netloc!r} in its key; "
                "the root was qualified twice. Use s3://<bucket>/<path>"
            )
    segments = [segment for segment in key.split("/") if segment]
    for index, segment in enumerate(segments):
        if index == 0 or segment != parsed.bucket:
            continue
        prefix = segments[:index]
        if segments[index + 1 : index + 1 + len(prefix)] == prefix:
            raise ValueError(
                f"artifact root {shown!r} repeats '<prefix>/<bucket>/<prefix>'; it was qualified twice "
                "(an endpoint or root URL was joined onto an already qualified URI)"
            )
