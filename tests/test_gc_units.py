"""Pure parts of ``artifact-fs gc``: MLflow's age format, the run directory, live-pointer protection."""

from __future__ import annotations

import pytest

from artifact_fs.gc import roots
from artifact_fs.gc.backend_store import Resource
from artifact_fs.gc.collector import Protection, Settings, parse_age

pytestmark = pytest.mark.gc


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [("1d2h3m4s", 93_784_000), ("1.5h", 5_400_000), ("30d", 2_592_000_000), ("0s", 0), ("4s", 4000)],
)
def test_older_than_uses_mlflow_gc_format(text: str, milliseconds: int) -> None:
    assert parse_age(text) == milliseconds


@pytest.mark.parametrize("text", ["", "1h2d", "5 minutes", "-1d"])
def test_older_than_rejects_what_mlflow_gc_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time information"):
        parse_age(text)


def test_run_directory_is_only_the_resources_own() -> None:
    assert roots.run_directory_of("s3://b/1/abc/artifacts", "abc") == "s3://b/1/abc"
    assert roots.run_directory_of("s3://b/1/abc/artifacts/", "abc") == "s3://b/1/abc"
    assert roots.run_directory_of("s3://b/1/other/artifacts", "abc") is None
    assert roots.run_directory_of("s3://b/custom-root", "abc") is None


def test_proxied_roots_map_into_the_destination() -> None:
    uri = roots.resolve(
        "mlflow-artifacts:/1/abc/artifacts", artifacts_destination="s3://b/dest/", tracking_uri=None
    )
    assert uri == "s3://b/dest/1/abc/artifacts"
    assert roots.resolve("s3://b/1/abc/artifacts", artifacts_destination="x", tracking_uri=None).startswith(
        "s3://b"
    )


def run(run_id: str, uri: str) -> Resource:
    return Resource("run", run_id, uri, "1", "deleted")


def test_a_root_a_live_thing_points_into_is_kept() -> None:
    protection = Protection(["s3://b/1/abc/artifacts/model", "s3://b/2/live/artifacts"], {"ref"}, Settings())
    assert protection.reason(run("abc", "s3://b/1/abc/artifacts"))
    assert protection.reason(run("ref", "s3://b/1/ref/artifacts"))  # runs:/ref/... names it
    assert protection.reason(run("inner", "s3://b/2/live/artifacts/inner"))
    assert protection.reason(run("free", "s3://b/1/free/artifacts")) is None
    assert protection.reason(run("abcd", "s3://b/1/abc/artifacts-other")) is None


class RecordingStore:
    """An object store that records each batch delete it receives."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def rm(self, paths: list[str]) -> None:
        self.batches.append(paths)

    def invalidate_cache(self, path: str | None = None) -> None:
        pass


def test_object_store_roots_are_deleted_in_one_batch_per_bucket() -> None:
    from types import SimpleNamespace

    from artifact_fs.gc.collector import PendingRoot, delete_batched
    from artifact_fs.gc.report import FAILED, Outcome

    fs = RecordingStore()
    forgotten: list[tuple[str, str, bool]] = []

    def item(path: str) -> PendingRoot:
        root = SimpleNamespace(
            path=path,
            backend_fs=fs,
            capabilities=SimpleNamespace(empty_directories=False),
            uri=SimpleNamespace(backend="s3"),
            forget_digest=lambda relative, tree=False: forgotten.append((path, relative, tree)),
        )
        found = roots.Contents({f"{path}/a": 1, f"{path}/b/c": 2}, [])
        run_id = path.split("/")[-2]
        return PendingRoot(run(run_id, "s3://" + path), Outcome("run", run_id, FAILED), root, found)  # type: ignore[arg-type]

    left = delete_batched([item("b1/1/r1/artifacts"), item("b1/1/r2/artifacts"), item("b2/1/r3/artifacts")])
    assert left == []
    assert sorted(fs.batches) == [
        ["b1/1/r1/artifacts/a", "b1/1/r1/artifacts/b/c", "b1/1/r2/artifacts/a", "b1/1/r2/artifacts/b/c"],
        ["b2/1/r3/artifacts/a", "b2/1/r3/artifacts/b/c"],
    ]
    # Each deleted root's digest records (kept apart from it, issue #18) go too.
    assert sorted(forgotten) == [(f"{p}/artifacts", "", True) for p in ("b1/1/r1", "b1/1/r2", "b2/1/r3")]
