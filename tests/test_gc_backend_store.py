"""``artifact-fs gc``'s backend store on a small SQLite schema: long id lists, batched row deletes, URLs."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from artifact_fs.gc import backend_store, maintenance
from artifact_fs.gc.backend_store import BackendStore, Resource

pytestmark = pytest.mark.gc

SCHEMA = """
CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, artifact_location TEXT,
    lifecycle_stage TEXT, last_update_time INTEGER);
CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, artifact_uri TEXT, experiment_id INTEGER
    REFERENCES experiments (experiment_id), lifecycle_stage TEXT, deleted_time INTEGER);
CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT REFERENCES runs (run_uuid),
    PRIMARY KEY (key, run_uuid));
"""


def make_store(path: Path, runs: int) -> str:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.execute("INSERT INTO experiments VALUES (1, 'file:///x', 'active', 0)")
        rows = [(f"{i:032x}", f"file:///x/{i:032x}/artifacts", 1, "deleted", 0) for i in range(runs)]
        db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO params VALUES ('p', '1', ?)", [(row[0],) for row in rows])
    return f"sqlite:///{path}"


def test_long_id_lists_are_read_in_chunks(tmp_path: Path) -> None:
    store = BackendStore(make_store(tmp_path / "m.db", 2300))
    ids = [f"{i:032x}" for i in range(2300)]
    assert {run.id for run in store.runs(ids)} == set(ids)  # 2,300 > SQLite's 999 variables
    assert len(store.runs(ids + ids)) == 2300
    assert store.artifact_locations(["1"]) == ["file:///x"]
    store.dispose()


def test_rows_of_a_batch_go_in_one_transaction_with_their_dependants(tmp_path: Path) -> None:
    database = tmp_path / "m.db"
    store = BackendStore(make_store(database, 1200))
    with sqlite3.connect(database) as db:
        db.execute("UPDATE runs SET lifecycle_stage = 'active' WHERE run_uuid = ?", (f"{5:032x}",))
    resources = [Resource("run", f"{i:032x}", None, "1", "deleted") for i in range(1200)]
    store.hard_delete_many(resources)
    store.dispose()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT run_uuid FROM runs").fetchall() == [(f"{5:032x}",)]  # not deleted: kept
        assert db.execute("SELECT run_uuid FROM params").fetchall() == [(f"{5:032x}",)]


@pytest.mark.parametrize("uri", ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_mlflows_postgresql_url_uses_the_installed_driver(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"psycopg"}
    monkeypatch.setattr(
        backend_store.importlib.util, "find_spec", lambda name: object() if name in installed else None
    )
    assert backend_store.sqlalchemy_url(uri) == "postgresql+psycopg://u@h/db"
    installed.add("psycopg2")
    assert backend_store.sqlalchemy_url(uri).startswith(("postgresql://", "postgresql+psycopg2://"))
    assert backend_store.sqlalchemy_url("sqlite:///m.db") == "sqlite:///m.db"
    assert backend_store.sqlalchemy_url("mysql+pymysql://u@h/db") == "mysql+pymysql://u@h/db"


def test_ftp_modification_times_are_utc() -> None:
    expected = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert maintenance.modified_seconds({"modify": "20240102030405"}) == expected
    assert maintenance.modified_seconds({"mtime": 12.5}) == 12.5
    assert maintenance.modified_seconds({"name": "x"}) is None
