"""Permanently delete what MLflow marked ``deleted``: artifacts first, then the rows, per resource.

The selection follows ``mlflow gc`` (mlflow/cli/__init__.py ``_gc_tracking_resources``): explicit ids
must be ``deleted`` (and old enough with ``--older-than``); without ids every deleted run, logged model
and experiment older than the threshold is taken, and a chosen experiment brings its deleted runs.
Unlike ``mlflow gc``, a refusal or a failure is reported and the others go on; a root that a live
registered model version, logged model or run points into is kept; a row is removed only after its
root was confirmed empty; an experiment only when none of its runs or models is left.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from artifact_fs import uris
from artifact_fs.gc import roots
from artifact_fs.gc.backend_store import DELETED, BackendStore, Refusal, Resource
from artifact_fs.gc.report import DELETED as OUTCOME_DELETED
from artifact_fs.gc.report import FAILED, KEPT, REFUSED, WOULD_DELETE, Outcome, Report

_AGE = re.compile(
    r"^((?P<days>[\.\d]+?)d)?((?P<hours>[\.\d]+?)h)?((?P<minutes>[\.\d]+?)m)?((?P<seconds>[\.\d]+?)s)?$"
)


def parse_age(text: str) -> int:
    """``#d#h#m#s`` (each part optional, floats allowed, in this order) in milliseconds, as mlflow gc."""
    match = _AGE.match(text)
    if match is None or not text:
        raise ValueError(
            f"could not parse any time information from {text!r}; examples: '8h', '2d8h5m20s', '2m4s'"
        )
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return int(timedelta(**parts).total_seconds() * 1000)


class Progress(Protocol):
    """What the collector needs of a progress bar (tqdm has both)."""

    def reset(self, total: Any = None) -> None: ...

    def update(self, n: float | None = 1) -> bool | None: ...


@dataclass(frozen=True)
class Settings:
    """What to collect and how (the command's options)."""

    older_than: str | None = None
    run_ids: list[str] | None = None
    experiment_ids: list[str] | None = None
    logged_model_ids: list[str] | None = None
    artifacts_destination: str | None = None
    tracking_uri: str | None = None
    dry_run: bool = False
    max_workers: int = 8
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def older_than_ms(self) -> int:
        return parse_age(self.older_than) if self.older_than else 0


@dataclass
class Selection:
    runs: list[Resource]
    logged_models: list[Resource]
    experiments: list[Resource]
    refusals: list[Refusal]


def select(store: BackendStore, settings: Settings) -> Selection:
    """What ``mlflow gc`` would delete with these options; explicit ids that may not go are refusals."""
    refusals: list[Refusal] = []
    age = settings.older_than_ms
    old_runs = store.deleted_run_ids(age)
    if settings.run_ids is not None:
        runs = _explicit(
            store.runs(settings.run_ids),
            settings.run_ids,
            old_runs,
            settings=settings,
            refusals=refusals,
            kind="run",
        )
    else:
        runs = store.runs(sorted(old_runs)) if old_runs else []
    old_models = store.deleted_logged_model_ids(age)
    if settings.logged_model_ids is not None:
        found = store.logged_models(settings.logged_model_ids)
        models = _explicit(
            found,
            settings.logged_model_ids,
            old_models,
            settings=settings,
            refusals=refusals,
            kind="logged_model",
        )
    else:
        models = store.logged_models(sorted(old_models)) if old_models else []
    threshold = int(time.time() * 1000) - age
    experiments: list[Resource] = []
    rows = store.experiments(settings.experiment_ids)
    if settings.experiment_ids is not None:
        known = {experiment.id for experiment, _ in rows}
        refusals += [
            Refusal("experiment", e, "no such experiment") for e in settings.experiment_ids if e not in known
        ]
    for experiment, updated in rows:
        too_new = settings.older_than is not None and (updated is None or updated >= threshold)
        if experiment.lifecycle_stage != DELETED or too_new:
            if settings.experiment_ids is not None:
                reason = (
                    "not in the deleted lifecycle stage"
                    if not too_new
                    else f"not older than {settings.older_than}"
                )
                refusals.append(Refusal("experiment", experiment.id, reason))
            continue
        experiments.append(experiment)
    if experiments:
        chosen = {run.id for run in runs}
        inside = store.runs(experiment_ids=[e.id for e in experiments])
        runs += [run for run in inside if run.lifecycle_stage == DELETED and run.id not in chosen]
        known_models = {model.id for model in models}
        models += [
            model
            for model in store.logged_models()
            if model.experiment_id in {e.id for e in experiments}
            and model.lifecycle_stage == DELETED
            and model.id not in known_models
        ]
    return Selection(runs, models, experiments, refusals)


def _explicit(
    found: list[Resource],
    requested: list[str],
    old_enough: set[str],
    *,
    settings: Settings,
    refusals: list[Refusal],
    kind: str,
) -> list[Resource]:
    by_id = {resource.id: resource for resource in found}
    chosen = []
    for resource_id in dict.fromkeys(requested):
        resource = by_id.get(resource_id)
        if resource is None:
            refusals.append(Refusal(kind, resource_id, "no such id in the backend store"))
        elif resource.lifecycle_stage != DELETED:
            refusals.append(Refusal(kind, resource_id, "not in the deleted lifecycle stage"))
        elif settings.older_than and resource_id not in old_enough:
            refusals.append(Refusal(kind, resource_id, f"not older than {settings.older_than}"))
        else:
            chosen.append(resource)
    return chosen


class Protection:
    """Roots that live things point into: never deleted, however the row is marked."""

    def __init__(self, pointers: Iterable[str], ids: set[str], settings: Settings) -> None:
        self.ids = ids
        self.pointers = {_normal(self._resolve(pointer, settings)) for pointer in pointers} | {
            _normal(pointer) for pointer in pointers
        }
        self.settings = settings

    @staticmethod
    def _resolve(uri: str, settings: Settings) -> str:
        return roots.resolve(uri, artifacts_destination=settings.artifacts_destination, tracking_uri=None)

    def reason(self, resource: Resource) -> str | None:
        if resource.id in self.ids:
            return "a live registered model version or logged model refers to it"
        if not resource.artifact_uri:
            return None
        candidates = {
            _normal(resource.artifact_uri),
            _normal(self._resolve(resource.artifact_uri, self.settings)),
        }
        for root in candidates:
            for pointer in self.pointers:
                if pointer == root or pointer.startswith(root + "/") or root.startswith(pointer + "/"):
                    return (
                        f"a live model version, logged model or run points into it ({uris.redact(pointer)})"
                    )
        return None


def _normal(uri: str) -> str:
    return uri.rstrip("/")


def collect(
    store: BackendStore,
    settings: Settings,
    report: Report,
    *,
    progress: Progress | None = None,
) -> Selection:
    """Collect the selection: roots concurrently, then experiments. Returns what was selected."""
    selection = select(store, settings)
    for refusal in selection.refusals:
        report.add(Outcome(refusal.kind, refusal.id, REFUSED, reason=refusal.reason))
    pointers, ids = store.live_pointers()
    protection = Protection(pointers, ids, settings)
    resources = [*selection.runs, *selection.logged_models]
    results: dict[str, Outcome] = {}
    if progress is not None:
        progress.reset(total=len(resources))
    with ThreadPoolExecutor(max_workers=max(1, settings.max_workers), thread_name_prefix="gc") as pool:
        futures = {pool.submit(_collect_one, store, r, settings, protection): r for r in resources}
        for future in as_completed(futures):
            outcome = report.add(future.result())
            results[outcome.id] = outcome
            if progress is not None:
                progress.update(1)
    for experiment in selection.experiments:
        report.add(_collect_experiment(store, experiment, settings, selection, results))
    return selection


def _collect_one(
    store: BackendStore, resource: Resource, settings: Settings, protection: Protection
) -> Outcome:
    """One run or logged model: its root's contents, then (confirmed empty) its rows."""
    outcome = Outcome(resource.kind, resource.id, FAILED, uri=resource.artifact_uri)
    kept = protection.reason(resource)
    if kept:
        outcome.status, outcome.reason = KEPT, kept
        return outcome
    try:
        if resource.artifact_uri:
            uri = roots.resolve(
                resource.artifact_uri,
                artifacts_destination=settings.artifacts_destination,
                tracking_uri=settings.tracking_uri,
            )
            root = roots.open_for_gc(uri, settings.environ, settings.tracking_uri)
            found = roots.contents(root)
            outcome.objects, outcome.bytes = found.objects, found.bytes
            if settings.dry_run:
                outcome.status = WOULD_DELETE
                return outcome
            roots.delete(root, found, run_directory_uri=roots.run_directory_of(uri, resource.id))
            left = roots.contents(root)
            if left.objects:
                outcome.reason = (
                    f"{left.objects} objects are still under the root (written meanwhile?); rows kept"
                )
                return outcome
        elif settings.dry_run:
            outcome.status = WOULD_DELETE
            return outcome
        store.hard_delete(resource)
        outcome.status, outcome.metadata_deleted = OUTCOME_DELETED, True
    except Exception as exc:  # noqa: BLE001 - one failure is reported; the others go on
        outcome.reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
    return outcome


def _collect_experiment(
    store: BackendStore,
    experiment: Resource,
    settings: Settings,
    selection: Selection,
    results: Mapping[str, Outcome],
) -> Outcome:
    outcome = Outcome("experiment", experiment.id, FAILED, uri=experiment.artifact_uri)
    if settings.dry_run:
        outcome.status = WOULD_DELETE
        return outcome
    members = [r for r in (*selection.runs, *selection.logged_models) if r.experiment_id == experiment.id]
    unfinished = [
        r.id for r in members if results.get(r.id, Outcome("", "", FAILED)).status != OUTCOME_DELETED
    ]
    try:
        remaining = store.remaining_children(experiment.id)
        if unfinished or remaining:
            outcome.status = KEPT
            outcome.reason = f"{max(len(unfinished), remaining)} of its runs or logged models are still there"
            return outcome
        store.hard_delete(experiment)
        outcome.status, outcome.metadata_deleted = OUTCOME_DELETED, True
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        outcome.reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
    return outcome
