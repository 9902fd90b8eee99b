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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from artifact_fs import uris
from artifact_fs.gc import roots
from artifact_fs.gc.backend_store import DELETED, BackendStore, Refusal, Resource
from artifact_fs.gc.report import DELETED as OUTCOME_DELETED
from artifact_fs.gc.report import FAILED, KEPT, REFUSED, WOULD_DELETE, Outcome, Report, reason_of
from artifact_fs.root import ArtifactRoot

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


BATCH = 500
"""Runs and logged models collected together: one batch of deletes per store, one transaction of rows."""


@dataclass
class PendingRoot:
    """One run's or logged model's root on its way through a batch."""

    resource: Resource
    outcome: Outcome
    root: ArtifactRoot | None = None
    found: roots.Contents | None = None
    uri: str | None = None


def collect(
    store: BackendStore,
    settings: Settings,
    report: Report,
    *,
    progress: Progress | None = None,
) -> Selection:
    """Collect the selection in batches: roots concurrently, then experiments. Returns what was selected."""
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
        for start in range(0, len(resources), BATCH):
            batch = resources[start : start + BATCH]
            for outcome in _collect_batch(store, batch, settings, protection, pool):
                results[outcome.id] = report.add(outcome)
                if progress is not None:
                    progress.update(1)
    for experiment in selection.experiments:
        report.add(_collect_experiment(store, experiment, settings, selection, results))
    return selection


def _collect_batch(
    store: BackendStore,
    batch: list[Resource],
    settings: Settings,
    protection: Protection,
    pool: ThreadPoolExecutor,
) -> list[Outcome]:
    """Measure every root, delete their files (batched per store), confirm each empty, drop the rows."""
    items = list(pool.map(lambda resource: _measure(resource, settings, protection), batch))
    pending = [item for item in items if item.outcome.status == FAILED and item.outcome.reason is None]
    if settings.dry_run:
        for item in pending:
            item.outcome.status = WOULD_DELETE
        return [item.outcome for item in items]
    with_files = [item for item in pending if item.root is not None]
    singles = delete_batched(with_files)
    list(pool.map(_delete_one, singles))
    list(pool.map(_confirm_empty, with_files))
    confirmed = [item for item in pending if item.outcome.reason is None]
    _delete_rows(store, confirmed)
    return [item.outcome for item in items]


def _failed(item: PendingRoot, exc: BaseException) -> None:
    item.outcome.reason = reason_of(exc)


def _measure(resource: Resource, settings: Settings, protection: Protection) -> PendingRoot:
    """Kept, or opened and listed; a failure is recorded on the outcome."""
    item = PendingRoot(resource, Outcome(resource.kind, resource.id, FAILED, uri=resource.artifact_uri))
    kept = protection.reason(resource)
    if kept:
        item.outcome.status, item.outcome.reason = KEPT, kept
        return item
    if not resource.artifact_uri:
        return item
    try:
        item.uri = roots.resolve(
            resource.artifact_uri,
            artifacts_destination=settings.artifacts_destination,
            tracking_uri=settings.tracking_uri,
        )
        item.root = roots.open_for_gc(item.uri, settings.environ, settings.tracking_uri)
        item.found = roots.contents(item.root)
        item.outcome.objects, item.outcome.bytes = item.found.objects, item.found.bytes
    except Exception as exc:  # noqa: BLE001 - one failure is reported; the others go on
        _failed(item, exc)
    return item


def delete_batched(items: list[PendingRoot]) -> list[PendingRoot]:
    """Files of object-store roots on one filesystem in one batch call; returns the roots left to do."""
    groups: dict[tuple[int, str], list[PendingRoot]] = {}
    singles = []
    for item in items:
        assert item.root is not None and item.found is not None
        if roots.batchable(item.root) and item.found.files:
            # Per bucket too: s3fs sends a batch's keys to the bucket of its first key.
            bucket = item.root.path.lstrip("/").split("/", 1)[0]
            groups.setdefault((id(item.root.backend_fs), bucket), []).append(item)
        elif item.found.files or item.found.directories or roots.has_directories(item.root):
            singles.append(item)
    for group in groups.values():
        try:
            roots.delete_files(group[0].root.backend_fs, [f for i in group for f in i.found.files])  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - retried root by root, so each failure is its own
            singles += group
            continue
        for item in group:  # their digest records, in the bucket's hidden tree (one listing a root)
            item.root.forget_digest("", tree=True)  # type: ignore[union-attr]
    return singles


def _delete_one(item: PendingRoot) -> None:
    assert item.root is not None and item.found is not None and item.uri is not None
    try:
        roots.delete(
            item.root, item.found, run_directory_uri=roots.run_directory_of(item.uri, item.resource.id)
        )
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        _failed(item, exc)


def _confirm_empty(item: PendingRoot) -> None:
    """Rows go only for a root listed empty after the delete (files written meanwhile keep them)."""
    if item.outcome.reason is not None or item.root is None:
        return
    try:
        left = roots.contents(item.root)
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        _failed(item, exc)
        return
    if left.objects:
        item.outcome.reason = (
            f"{left.objects} objects are still under the root (written meanwhile?); rows kept"
        )


def _delete_rows(store: BackendStore, items: list[PendingRoot]) -> None:
    """One transaction for the batch; if it fails, one per resource so each failure is its own."""
    if not items:
        return
    try:
        store.hard_delete_many([item.resource for item in items])
        done = items
    except Exception:  # noqa: BLE001 - retried one by one below
        done = []
        for item in items:
            try:
                store.hard_delete(item.resource)
                done.append(item)
            except Exception as exc:  # noqa: BLE001 - reported, the others go on
                _failed(item, exc)
    for item in done:
        item.outcome.status, item.outcome.metadata_deleted = OUTCOME_DELETED, True


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
        outcome.reason = reason_of(exc)
    return outcome
