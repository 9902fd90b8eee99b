"""MLflow's backend store (SQLite, PostgreSQL, MySQL) read and pruned through SQLAlchemy.

MLflow is not imported: the tables are reflected from the database, so the collector follows the
schema of whichever MLflow version created it. Rows are removed children first along the foreign
keys, as MLflow's ``_hard_delete_run`` / ``_hard_delete_experiment`` / ``_hard_delete_logged_model``
do (mlflow/store/tracking/sqlalchemy_store.py); a ``SET NULL`` foreign key is cleared, not followed.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DELETED = "deleted"
IN_LIST_SIZE = 500
"""Ids per ``IN (...)`` list: SQLite allows 999 bound variables in a statement before 3.32."""
DELETED_MODEL_VERSION_STAGE = "Deleted_Internal"
ROLLUP_TABLES = (
    "sql_trace_rollup_rebuild_queue",
    "sql_trace_metric_daily_rollups",
    "sql_span_cost_daily_rollups",
    "sql_assessment_daily_rollups",
)
"""Tables keyed by experiment id without a foreign key; MLflow removes their rows with the experiment."""


@dataclass(frozen=True)
class Resource:
    """A run, logged model or experiment row: what to collect and where its artifacts are."""

    kind: str  # "run" | "logged_model" | "experiment"
    id: str
    artifact_uri: str | None
    experiment_id: str
    lifecycle_stage: str


@dataclass(frozen=True)
class Refusal:
    """An explicitly requested id that must not be collected, and why."""

    kind: str
    id: str
    reason: str


def _now_ms() -> int:
    return int(time.time() * 1000)


class BackendStore:
    """The tracking tables of one MLflow backend store, optionally narrowed to one workspace."""

    def __init__(self, uri: str, *, workspace: str | None = None) -> None:
        try:
            import sqlalchemy
        except ImportError as exc:
            raise ImportError(
                "artifact-fs gc reads MLflow's backend store with SQLAlchemy: pip install 'artifact-fs[gc]'"
            ) from exc
        self._sa = sqlalchemy
        uri = sqlalchemy_url(uri)
        connect_args = {"timeout": 30} if uri.startswith("sqlite") else {}
        self.engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
        if uri.startswith("sqlite"):
            sqlalchemy.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.metadata = sqlalchemy.MetaData()
        self.metadata.reflect(self.engine)
        if "runs" not in self.metadata.tables or "experiments" not in self.metadata.tables:
            raise ValueError(f"{_redacted(uri)} is not an MLflow backend store (no runs/experiments tables)")
        self.workspace = workspace
        if workspace is not None and "workspace" not in self.table("experiments").c:
            raise ValueError("--workspace needs a backend store with workspaces (MLflow 3.5 or later)")
        self._write_lock = threading.Lock()
        self._children: dict[str, list[tuple[Any, _ForeignKey]]] = {}

    def table(self, name: str) -> Any:
        return self.metadata.tables[name]

    def has(self, name: str) -> bool:
        return name in self.metadata.tables

    # -- reading ----------------------------------------------------------------------------------
    def _experiment_filter(self, column: Any) -> Any:
        """Rows of the chosen workspace only: ``column`` is an experiment id column."""
        sa = self._sa
        if self.workspace is None:
            return sa.true()
        experiments = self.table("experiments")
        chosen = sa.select(experiments.c.experiment_id).where(experiments.c.workspace == self.workspace)
        return column.in_(chosen)

    def _rows(self, statement: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement))

    def _rows_in(self, statement: Any, column: Any, values: list[Any]) -> list[Any]:
        """``statement`` narrowed to ``column IN values``, one query per :data:`IN_LIST_SIZE` values."""
        unique = list(dict.fromkeys(values))
        rows: list[Any] = []
        for start in range(0, len(unique), IN_LIST_SIZE):
            rows += self._rows(statement.where(column.in_(unique[start : start + IN_LIST_SIZE])))
        return rows

    def runs(
        self, run_ids: Iterable[str] | None = None, experiment_ids: Iterable[str] | None = None
    ) -> list[Resource]:
        runs = self.table("runs")
        statement = self._sa.select(
            runs.c.run_uuid, runs.c.artifact_uri, runs.c.experiment_id, runs.c.lifecycle_stage
        ).where(self._experiment_filter(runs.c.experiment_id))
        if experiment_ids is not None:
            rows = self._rows_in(statement, runs.c.experiment_id, [int(e) for e in experiment_ids])
        elif run_ids is not None:
            rows = self._rows_in(statement, runs.c.run_uuid, list(run_ids))
        else:
            rows = self._rows(statement)
        if experiment_ids is not None and run_ids is not None:
            wanted = set(run_ids)
            rows = [row for row in rows if row[0] in wanted]
        return [Resource("run", r[0], r[1], str(r[2]), r[3]) for r in rows]

    def deleted_run_ids(self, older_than_ms: int) -> set[str]:
        runs = self.table("runs")
        statement = self._sa.select(runs.c.run_uuid).where(
            runs.c.lifecycle_stage == DELETED,
            runs.c.deleted_time <= _now_ms() - older_than_ms,
            self._experiment_filter(runs.c.experiment_id),
        )
        return {row[0] for row in self._rows(statement)}

    def logged_models(self, model_ids: Iterable[str] | None = None) -> list[Resource]:
        if not self.has("logged_models"):
            return []
        models = self.table("logged_models")
        statement = self._sa.select(
            models.c.model_id, models.c.artifact_location, models.c.experiment_id, models.c.lifecycle_stage
        ).where(self._experiment_filter(models.c.experiment_id))
        rows = (
            self._rows(statement)
            if model_ids is None
            else self._rows_in(statement, models.c.model_id, list(model_ids))
        )
        return [Resource("logged_model", r[0], r[1], str(r[2]), r[3]) for r in rows]

    def deleted_logged_model_ids(self, older_than_ms: int) -> set[str]:
        if not self.has("logged_models"):
            return set()
        models = self.table("logged_models")
        statement = self._sa.select(models.c.model_id).where(
            models.c.lifecycle_stage == DELETED,
            models.c.last_updated_timestamp_ms <= _now_ms() - older_than_ms,
            self._experiment_filter(models.c.experiment_id),
        )
        return {row[0] for row in self._rows(statement)}

    def experiments(self, experiment_ids: Iterable[str] | None = None) -> list[tuple[Resource, int | None]]:
        """Experiments with their ``last_update_time`` (MLflow's age for an experiment)."""
        experiments = self.table("experiments")
        statement = self._sa.select(
            experiments.c.experiment_id,
            experiments.c.artifact_location,
            experiments.c.lifecycle_stage,
            experiments.c.last_update_time,
        ).where(self._experiment_filter(experiments.c.experiment_id))
        rows = (
            self._rows(statement)
            if experiment_ids is None
            else self._rows_in(statement, experiments.c.experiment_id, [int(e) for e in experiment_ids])
        )
        return [(Resource("experiment", str(r[0]), r[1], str(r[0]), r[2]), r[3]) for r in rows]

    def live_pointers(self) -> tuple[list[str], set[str]]:
        """Artifact URIs that live things point to, and ids named by their ``runs:/``/``models:/`` URIs.

        Live registered model versions (source, storage location), live logged models and live runs:
        a root holding or inside one of these is kept.
        """
        uris: list[str] = []
        sa = self._sa
        if self.has("model_versions"):
            versions = self.table("model_versions")
            columns = [c for c in ("source", "storage_location") if c in versions.c]
            statement = sa.select(*[versions.c[c] for c in columns]).where(
                sa.or_(
                    versions.c.current_stage.is_(None),
                    versions.c.current_stage != DELETED_MODEL_VERSION_STAGE,
                )
            )
            uris += [value for row in self._rows(statement) for value in row if value]
        if self.has("logged_models"):
            models = self.table("logged_models")
            statement = sa.select(models.c.artifact_location).where(models.c.lifecycle_stage != DELETED)
            uris += [row[0] for row in self._rows(statement) if row[0]]
        runs = self.table("runs")
        statement = sa.select(runs.c.artifact_uri).where(runs.c.lifecycle_stage != DELETED)
        uris += [row[0] for row in self._rows(statement) if row[0]]
        ids = {_referenced_id(uri) for uri in uris} - {None}
        return uris, ids  # type: ignore[return-value]

    def known_ids(self) -> set[str]:
        """Every run and logged model id the store knows, in any lifecycle stage (for orphans)."""
        runs = self.table("runs")
        ids = {row[0] for row in self._rows(self._sa.select(runs.c.run_uuid))}
        if self.has("logged_models"):
            models = self.table("logged_models")
            ids |= {row[0] for row in self._rows(self._sa.select(models.c.model_id))}
        return ids

    def artifact_locations(self, experiment_ids: Iterable[str] | None = None) -> list[str]:
        """The artifact locations (where run and model roots are created) of every or these experiments."""
        experiments = self.table("experiments")
        statement = self._sa.select(experiments.c.artifact_location).where(
            self._experiment_filter(experiments.c.experiment_id)
        )
        rows = (
            self._rows(statement)
            if experiment_ids is None
            else self._rows_in(statement, experiments.c.experiment_id, [int(e) for e in experiment_ids])
        )
        return sorted({row[0] for row in rows if row[0]})

    def remaining_children(self, experiment_id: str) -> int:
        """Runs and logged models of an experiment still in the store, in any lifecycle stage."""
        sa = self._sa
        count = 0
        for name in ("runs", "logged_models"):
            if not self.has(name):
                continue
            table = self.table(name)
            statement = sa.select(sa.func.count()).where(table.c.experiment_id == int(experiment_id))
            count += self._rows(statement)[0][0]
        return count

    # -- deleting ---------------------------------------------------------------------------------
    def hard_delete(self, resource: Resource) -> None:
        """Remove the row and its dependants in one transaction, only while it is still ``deleted``."""
        self.hard_delete_many([resource])

    def hard_delete_many(self, resources: list[Resource]) -> None:
        """Remove these rows and their dependants in one transaction (one commit for a whole batch),
        each only while it is still ``deleted``."""
        sa = self._sa
        keys = {"run": ("runs", "run_uuid"), "logged_model": ("logged_models", "model_id")}
        with self._write_lock, self.engine.begin() as connection:
            for kind in dict.fromkeys(resource.kind for resource in resources):
                name, key = keys.get(kind, ("experiments", "experiment_id"))
                table = self.table(name)
                values: list[Any] = [
                    int(r.id) if kind == "experiment" else r.id for r in resources if r.kind == kind
                ]
                for start in range(0, len(values), IN_LIST_SIZE):
                    chunk = values[start : start + IN_LIST_SIZE]
                    if kind == "experiment":
                        for rollup_name in ROLLUP_TABLES:
                            if self.has(rollup_name) and "experiment_id" in self.table(rollup_name).c:
                                rollup = self.table(rollup_name)
                                connection.execute(sa.delete(rollup).where(rollup.c.experiment_id.in_(chunk)))
                    condition = sa.and_(table.c[key].in_(chunk), table.c.lifecycle_stage == DELETED)
                    self._delete_where(connection, table, condition, visiting=())

    def _delete_where(self, connection: Any, table: Any, condition: Any, visiting: tuple[str, ...]) -> None:
        sa = self._sa
        for child, foreign_key in self._referencing(table):
            if child.name in visiting:
                continue
            parents = sa.select(*foreign_key.referred_columns_of(table)).where(condition)
            local = foreign_key.local_columns
            match = local[0].in_(parents) if len(local) == 1 else sa.tuple_(*local).in_(parents)
            if (foreign_key.ondelete or "").upper() == "SET NULL":
                connection.execute(sa.update(child).where(match).values({c.name: None for c in local}))
            else:
                self._delete_where(connection, child, match, (*visiting, table.name))
        connection.execute(sa.delete(table).where(condition))

    def _referencing(self, table: Any) -> list[tuple[Any, _ForeignKey]]:
        """Tables with a foreign key to ``table`` (computed once per table: the schema is fixed)."""
        if table.name not in self._children:
            self._children[table.name] = [
                (child, _ForeignKey(constraint))
                for child in self.metadata.sorted_tables
                for constraint in child.foreign_key_constraints
                if constraint.referred_table is table and child is not table
            ]
        return self._children[table.name]

    def dispose(self) -> None:
        self.engine.dispose()


class _ForeignKey:
    """A reflected foreign key constraint: its local columns, in order, and the columns they refer to."""

    def __init__(self, constraint: Any) -> None:
        self.local_columns = [element.parent for element in constraint.elements]
        self.referred = [element.column.name for element in constraint.elements]
        self.ondelete = constraint.ondelete

    def referred_columns_of(self, table: Any) -> list[Any]:
        return [table.c[name] for name in self.referred]


def sqlalchemy_url(uri: str) -> str:
    """The PostgreSQL URL MLflow was given, with the driver installed here (``[gc]`` brings psycopg 3).

    MLflow's servers often run with psycopg2 (``postgresql://`` on SQLAlchemy 2.0,
    ``postgresql+psycopg2://``); the same URL works here when only psycopg 3 is installed.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
        return uri
    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return uri if scheme != "postgres" else f"postgresql://{rest}"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """As MLflow's engine: foreign keys enforced (a missed dependant fails the transaction)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _referenced_id(uri: str) -> str | None:
    """The run id of ``runs:/<id>/...`` or the model id of ``models:/m-<id>...``."""
    for scheme in ("runs:/", "models:/"):
        if uri.startswith(scheme):
            head = uri[len(scheme) :].lstrip("/").split("/", 1)[0]
            return head or None
    return None


def _redacted(uri: str) -> str:
    head, at, tail = uri.rpartition("@")
    return f"{head.split('://', 1)[0]}://***@{tail}" if at else uri
