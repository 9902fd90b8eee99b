"""``models:/...``: a model's artifacts, resolved the way MLflow 3's ``ModelsArtifactRepository`` does.

* ``models:/<model_id>`` (MLflow 3 logged model): ``GET /api/2.0/mlflow/logged-models/<id>`` gives
  its ``artifact_uri`` (``<experiment location>/models/<model_id>/artifacts``). Writable, like a run.
* ``models:/<name>/<version>``: ``GET /api/2.0/mlflow/model-versions/get-download-uri`` (the
  version's storage location, else its source); a ``models:/`` answer is followed.
* ``models:/<name>@<alias>``: ``GET /api/2.0/mlflow/registered-models/alias`` gives the version.
* ``models:/<name>/latest`` and ``models:/<name>/<stage>``: the highest version
  ``POST /api/2.0/mlflow/registered-models/get-latest-versions`` returns.

Registry references are read-only (MLflow refuses ``log_artifact`` on them: "Use register_model
instead"); a write is ``PermissionError``. The registry is the tracking server unless
``registry_uri=`` names another. For a tracking URI that is not http(s), MLflow's own client resolves
the model if MLflow is importable. Each reference is resolved once per filesystem; ``invalidate_cache()``
forgets them (an alias may move). fsspec paths are ``<spec>/<artifact path>``, split as
:func:`artifact_fs.uris.split_models_path` says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict, cast
from urllib.parse import quote

from artifact_fs import settings, uris
from artifact_fs.backends.resolved import (
    CAPABILITIES,
    DIGESTS,
    Located,
    ResolvedRootsFileSystem,
    is_rest_tracking,
    join,
    lookup_options,
    tracking_json,
    with_mlflow_client,
)
from artifact_fs.policy import TransferPolicy
from artifact_fs.root import ArtifactRoot
from artifact_fs.uris import ModelReference, split_models_path

MAX_REDIRECTS = 5
"""How many ``models:/`` sources in a row are followed (a version registered from another version)."""


class ModelsOptions(TypedDict, total=False):
    tracking_uri: str
    registry_uri: str
    environ: Mapping[str, str]
    policy: TransferPolicy
    storage_options: dict[str, Any]


def artifact_uri_of_model(
    model: str | ModelReference,
    tracking_uri: str | None = None,
    *,
    registry_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
    policy: TransferPolicy | None = None,
) -> str:
    """Where the model's files live; ``FileNotFoundError`` for an unknown model, version or alias.

    ``model`` is a reference or its ``models:/`` URI (the artifact path in it is ignored).
    """
    env = os.environ if environ is None else environ
    tracking = tracking_uri or settings.MLFLOW_TRACKING_URI.get(env)
    registry = registry_uri or settings.MLFLOW_REGISTRY_URI.get(env) or tracking
    reference = model if isinstance(model, ModelReference) else _reference(model)
    for _ in range(MAX_REDIRECTS):
        if is_rest_tracking(tracking) and is_rest_tracking(registry):
            location = _location_over_rest(reference, str(tracking), str(registry), env, policy)
        else:
            location = _location_with_mlflow(reference, tracking, registry)
        if not location.lower().startswith("models:"):
            return location
        reference = _reference(location)
    raise OSError(f"{reference} is registered from a chain of more than {MAX_REDIRECTS} models:/ sources")


def _reference(uri: str) -> ModelReference:
    parsed = uris.parse(uri)
    if parsed.model is None:
        raise ValueError(f"{parsed} is not a models:/ URI")
    return parsed.model


def _location_over_rest(
    reference: ModelReference,
    tracking: str,
    registry: str,
    environ: Mapping[str, str],
    policy: TransferPolicy | None,
) -> str:
    def call(server: str, method: str, endpoint: str, what: str, **request: Any) -> dict[str, Any]:
        return tracking_json(server, method, endpoint, what=what, environ=environ, policy=policy, **request)

    if reference.model_id is not None:
        what = f"logged model {reference.model_id!r}"
        body = call(tracking, "GET", f"logged-models/{quote(reference.model_id, safe='')}", what)
        return _required(body.get("model", {}).get("info", {}).get("artifact_uri"), what, tracking)
    name = str(reference.name)
    version = reference.version
    if reference.alias is not None:
        what = f"alias {reference.alias!r} of registered model {name!r}"
        params = {"name": name, "alias": reference.alias}
        found = call(registry, "GET", "registered-models/alias", what, params=params)
        version = _required(found.get("model_version", {}).get("version"), what, registry)
    elif version is None:
        stages = [reference.stage] if reference.stage else []
        what = _latest(name, reference.stage)
        found = call(
            registry,
            "POST",
            "registered-models/get-latest-versions",
            what,
            body={"name": name, "stages": stages},
        )
        version = _highest([entry.get("version") for entry in found.get("model_versions", [])], what)
    what = f"version {version} of registered model {name!r}"
    params = {"name": name, "version": version}
    found = call(registry, "GET", "model-versions/get-download-uri", what, params=params)
    return _required(found.get("artifact_uri"), what, registry)


def _location_with_mlflow(reference: ModelReference, tracking: str | None, registry: str | None) -> str:
    """The same resolution through ``MlflowClient`` (sqlite, file or Databricks tracking URIs)."""

    def resolve(client: Any) -> str:
        if reference.model_id is not None:
            return str(client.get_logged_model(reference.model_id).artifact_location)
        version = reference.version
        if reference.alias is not None:
            version = client.get_model_version_by_alias(reference.name, reference.alias).version
        elif version is None:
            stages = [reference.stage] if reference.stage else None
            latest = client.get_latest_versions(reference.name, stages)
            version = _highest(
                [entry.version for entry in latest], _latest(str(reference.name), reference.stage)
            )
        return str(client.get_model_version_download_uri(reference.name, version))

    return with_mlflow_client(resolve, what=str(reference), tracking_uri=tracking, registry_uri=registry)


def _latest(name: str, stage: str | None) -> str:
    return f"latest version of registered model {name!r}" + (f" in stage {stage!r}" if stage else "")


def _highest(versions: list[Any], what: str) -> str:
    numbers = [int(version) for version in versions if str(version).isdigit()]
    if not numbers:
        raise FileNotFoundError(f"{what} not found: the model has no such versions")
    return str(max(numbers))


def _required(value: Any, what: str, server: str) -> str:
    if not value:
        raise OSError(f"the tracking server {uris.redact(server)} returned no artifact location for {what}")
    return str(value)


class ModelsFileSystem(ResolvedRootsFileSystem):
    """Paths are ``<model spec>/<artifact path>``; each spec maps to its model's artifact root."""

    protocol = ("models",)
    scheme = "models"

    def __init__(
        self, tracking_uri: str | None = None, *, registry_uri: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(tracking_uri, **kwargs)
        self.registry_uri = registry_uri

    def model_root(self, model: ModelReference) -> ArtifactRoot:
        """The model's artifact root (resolved once per spec)."""

        def resolve() -> ArtifactRoot:
            location = artifact_uri_of_model(
                model,
                self.tracking_uri,
                registry_uri=self.registry_uri,
                environ=self.environ,
                policy=self.policy,
            )
            return self.open_artifact_root(location, str(model))

        root = self.cached_root(model.spec, resolve)
        assert root is not None
        return root

    def locate(self, path: str) -> Located:
        model, relative = split_models_path(self._strip_protocol(path))
        return Located(model.spec, self.model_root(model), self._relative(relative))

    def check_writable(self, located: Located) -> None:
        model = split_models_path(located.prefix)[0]
        if not model.is_logged_model:
            raise PermissionError(
                f"{model} is a model registry reference and read-only (MLflow allows writes only to a "
                "logged model); write to models:/<model_id>/... or to the run instead"
            )


def options(
    uri: uris.ArtifactURI,
    environ: Mapping[str, str],
    *,
    policy: TransferPolicy | None = None,
    **overrides: Any,
) -> ModelsOptions:
    """``tracking_uri``, ``registry_uri`` and ``environ`` for the lookup; the rest go to the model's store."""
    return cast(ModelsOptions, lookup_options(environ, policy, overrides, ("tracking_uri", "registry_uri")))


def check_root(fs: ModelsFileSystem, path: str) -> None:
    """Resolve the model now: an unknown model, version or alias is ``FileNotFoundError`` here."""
    fs.model_root(split_models_path(path)[0])


def filesystem(options: ModelsOptions) -> ModelsFileSystem:
    return ModelsFileSystem(**options)


def fs_path(uri: uris.ArtifactURI, options: ModelsOptions) -> str:
    assert uri.model is not None
    return join(uri.model.spec, uri.model_relative_path)


__all__ = [
    "CAPABILITIES",
    "DIGESTS",
    "ModelsFileSystem",
    "artifact_uri_of_model",
    "check_root",
    "filesystem",
    "fs_path",
    "options",
]
