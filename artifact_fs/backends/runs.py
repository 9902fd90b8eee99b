"""``runs:/<run_id>/<path>``: a run's artifacts, wherever the run's ``artifact_uri`` points.

The run is looked up once through the tracking server's REST API (``GET /api/2.0/mlflow/runs/get``)
when the tracking URI is http(s); for any other tracking URI MLflow's own client does it if MLflow is
importable, else a clear error says what to set. The run's artifact root is then served by the
backend its scheme names (S3, proxied ``mlflow-artifacts``, local ...) as an
:class:`~artifact_fs.root.ArtifactRoot`, so ``runs:/<id>/model/MLmodel`` reads
``<artifact_uri>/model/MLmodel``. Files are opened through that backend's own file classes, so
writes (``df.to_parquet("runs:///<id>/x.parquet")``) land and reads use the backend's reader.

MLflow 3 keeps a logged model's files apart from its run (``<experiment>/models/<model_id>/artifacts``)
but still serves them as ``runs:/<run_id>/<model name>/...`` (``RunsArtifactRepository`` searches the
run's experiment for a logged model of that name from that run). artifact_fs does the same: below
``<run_id>/<name>/`` reads look in that logged model first (its files win, as in MLflow's download),
then in the run; listings merge both. That costs one ``logged-models/search`` per run and top-level
name, once per filesystem. Writes and deletes always go to the run's own root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict, cast

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
from artifact_fs.root import ArtifactRoot, RootFileSystem


class RunsOptions(TypedDict, total=False):
    tracking_uri: str
    environ: Mapping[str, str]
    policy: TransferPolicy
    storage_options: dict[str, Any]


def run_info(
    run_id: str,
    tracking_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
    policy: TransferPolicy | None = None,
) -> dict[str, str]:
    """The run's ``artifact_uri`` and ``experiment_id``; ``FileNotFoundError`` for an unknown run."""
    env = os.environ if environ is None else environ
    tracking = tracking_uri or settings.MLFLOW_TRACKING_URI.get(env)
    what = f"run {run_id!r}"
    if tracking and is_rest_tracking(tracking):
        info = tracking_json(
            tracking, "GET", "runs/get", what=what, environ=env, policy=policy, params={"run_id": run_id}
        )
        found: dict[str, Any] = info.get("run", {}).get("info", {})
    else:
        run = with_mlflow_client(lambda client: client.get_run(run_id), what=what, tracking_uri=tracking)
        found = {"artifact_uri": run.info.artifact_uri, "experiment_id": run.info.experiment_id}
    if not found.get("artifact_uri"):
        shown = uris.redact(tracking) if tracking else "the tracking store"
        raise OSError(f"{shown} returned no artifact_uri for run {run_id!r}")
    return {"artifact_uri": str(found["artifact_uri"]), "experiment_id": str(found.get("experiment_id", ""))}


def artifact_uri_of_run(
    run_id: str, tracking_uri: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The run's ``artifact_uri``; ``FileNotFoundError`` for a run the tracking store does not know."""
    return run_info(run_id, tracking_uri, environ)["artifact_uri"]


def logged_model_of_run(
    run_id: str,
    experiment_id: str,
    name: str,
    *,
    tracking_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
    policy: TransferPolicy | None = None,
) -> str | None:
    """The artifact location of the logged model called ``name`` that run ``run_id`` produced, or None.

    MLflow 3's ``RunsArtifactRepository._get_logged_model_artifact_repo``; a tracking server without
    logged models (MLflow 2) answers 404 here, which means "no such model".
    """
    if "'" in name or "\\" in name:
        return None  # not expressible in MLflow's search filter; no logged model can be matched
    search = f"name = '{name}' AND source_run_id = '{run_id}'"
    env = os.environ if environ is None else environ
    tracking = tracking_uri or settings.MLFLOW_TRACKING_URI.get(env)
    what = f"logged model {name!r} of run {run_id!r}"
    try:
        if tracking and is_rest_tracking(tracking):
            body = {"experiment_ids": [experiment_id], "filter": search, "max_results": 1}
            found = tracking_json(
                tracking, "POST", "logged-models/search", what=what, environ=env, policy=policy, body=body
            ).get("models", [])
            return str(found[0]["info"]["artifact_uri"]) if found else None
        models = with_mlflow_client(
            lambda client: client.search_logged_models(
                experiment_ids=[experiment_id], filter_string=search, max_results=1
            ),
            what=what,
            tracking_uri=tracking,
        )
    except FileNotFoundError:
        return None
    return str(models[0].artifact_location) if models else None


class RunsFileSystem(ResolvedRootsFileSystem):
    """Paths are ``<run_id>/<artifact path>``; each run maps to its own artifact root."""

    protocol = ("runs",)
    scheme = "runs"

    def __init__(self, tracking_uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(tracking_uri, **kwargs)
        self._experiment_ids: dict[str, str] = {}

    def run_root(self, run_id: str) -> ArtifactRoot:
        """The run's artifact root (resolved once per run)."""
        root = self.cached_root(("run", run_id), lambda: self._resolve_run(run_id))
        assert root is not None
        return root

    def _resolve_run(self, run_id: str) -> ArtifactRoot:
        info = run_info(run_id, self.tracking_uri, self.environ, self.policy)
        with self._lock:
            self._experiment_ids[run_id] = info["experiment_id"]
        return self.open_artifact_root(info["artifact_uri"], f"run {run_id!r}")

    def run_filesystem(self, run_id: str) -> RootFileSystem:
        """The run's artifact root as an artifact-relative filesystem."""
        return self.run_root(run_id).fs

    def locate(self, path: str) -> Located:
        run_id, _, relative = self._strip_protocol(path).partition("/")
        if not run_id:
            raise ValueError(f"Not a proper runs:/ URI {path!r}; expected runs:/<run_id>/<path>")
        return Located(run_id, self.run_root(run_id), self._relative(relative))

    def read_locations(self, path: str) -> list[Located]:
        """For ``<run_id>/<name>/...``: the logged model ``<name>`` of this run first, if there is
        one (MLflow lets its files win over the run's), then the run's own root."""
        located = self.locate(path)
        model = self.logged_model(located.prefix, located.relative)
        return [located] if model is None else [model, located]

    def logged_model(self, run_id: str, relative: str) -> Located | None:
        """The logged model called ``relative``'s first segment that this run produced (cached)."""
        name, _, inside = relative.partition("/")
        experiment_id = self._experiment_ids.get(run_id)
        if not name or experiment_id is None:
            return None  # MLflow looks for a model only below the run's top level

        def resolve() -> ArtifactRoot | None:
            location = logged_model_of_run(
                run_id,
                experiment_id,
                name,
                tracking_uri=self.tracking_uri,
                environ=self.environ,
                policy=self.policy,
            )
            return None if location is None else self.open_artifact_root(location, f"logged model {name!r}")

        root = self.cached_root(("model", run_id, name), resolve)
        return None if root is None else Located(join(run_id, name), root, inside)


def options(
    uri: uris.ArtifactURI,
    environ: Mapping[str, str],
    *,
    policy: TransferPolicy | None = None,
    **overrides: Any,
) -> RunsOptions:
    """``tracking_uri`` and ``environ`` for the lookup; every other option goes to the run's backend."""
    return cast(RunsOptions, lookup_options(environ, policy, overrides, ("tracking_uri",)))


def check_root(fs: RunsFileSystem, path: str) -> None:
    """Resolve the run now (as MLflow's ``RunsArtifactRepository`` does): an unknown run is
    ``FileNotFoundError`` here, not an empty listing later."""
    run_id = path.partition("/")[0]
    if not run_id:
        raise ValueError("Not a proper runs:/ URI: it names no run; expected runs:/<run_id>/<path>")
    fs.run_root(run_id)


def filesystem(options: RunsOptions) -> RunsFileSystem:
    return RunsFileSystem(**options)


def fs_path(uri: uris.ArtifactURI, options: RunsOptions) -> str:
    return join(uri.run_id or "", uri.run_relative_path)


__all__ = [
    "CAPABILITIES",
    "DIGESTS",
    "RunsFileSystem",
    "artifact_uri_of_run",
    "check_root",
    "filesystem",
    "fs_path",
    "logged_model_of_run",
    "options",
    "run_info",
]
