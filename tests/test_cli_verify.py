"""``artifact-fs verify`` and ``ls --long``: every file re-read and checked against its recorded digest."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from artifact_fs import integrity
from artifact_fs.cli import main

FILES = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 4096, "sub/deep/c.json": b"{}"}
DIGESTS_OFF = {"ARTIFACT_FS_DIGESTS": "false"}


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def sha256(data: bytes) -> str:
    hasher = integrity.Hasher("sha-256")
    hasher.update(data)
    return hasher.digest().header()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def logged(source: Path, tmp_path: Path) -> Path:
    """An artifact root whose files were logged by artifact_fs, with digests (the default)."""
    root = tmp_path / "store"
    assert invoke("log", str(source), str(root))[0] == 0
    return root


def test_a_clean_root_verifies_with_exit_0(logged: Path) -> None:
    code, out, err = invoke("verify", str(logged))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "verified 3 files (1048584 bytes): 3 ok, 0 damaged, 0 without a digest, 0 unreadable"
    ]


def test_a_file_changed_in_place_is_named_damaged_with_exit_1(logged: Path) -> None:
    with (logged / "sub" / "b.bin").open("r+b") as file:
        file.seek(1000)
        file.write(b"\xff")  # one byte, in place: size and name unchanged
    changed = (logged / "sub" / "b.bin").read_bytes()

    code, out, _ = invoke("verify", str(logged))

    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"DAMAGED sub/b.bin: expected {sha256(FILES['sub/b.bin'])}, got {sha256(changed)}"
    assert lines[1].endswith("2 ok, 1 damaged, 0 without a digest, 0 unreadable")
    assert len(lines) == 2


def test_a_truncated_file_is_damaged(logged: Path) -> None:
    os.truncate(logged / "sub" / "b.bin", 10)
    code, out, _ = invoke("verify", str(logged), "sub")
    assert code == 1
    assert out.splitlines()[0].startswith("DAMAGED sub/b.bin: expected ")
    assert "verified 2 files" in out


def test_files_logged_without_digests_are_reported_then_recorded(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    assert invoke("log", str(source), str(root), env=DIGESTS_OFF)[0] == 0

    code, out, _ = invoke("verify", str(root))
    assert code == 1
    assert sorted(out.splitlines()[:-1]) == [
        "NO DIGEST a.txt",
        "NO DIGEST sub/b.bin",
        "NO DIGEST sub/deep/c.json",
    ]
    assert out.splitlines()[-1].endswith("0 ok, 0 damaged, 3 without a digest, 0 unreadable")

    code, out, _ = invoke("verify", str(root), "--record")
    assert code == 0
    assert out.splitlines() == [
        "verified 3 files (1048584 bytes): 3 ok, 0 damaged, 0 without a digest, 0 unreadable; "
        "3 digests recorded"
    ]
    assert invoke("verify", str(root))[:2] == (0, out.splitlines()[0].split(";")[0] + "\n")

    code, out, _ = invoke("ls", str(root), "sub", "--long")
    assert code == 0
    assert out.split() == ["1048576", sha256(FILES["sub/b.bin"]), "sub/b.bin", "-", "-", "sub/deep/"]


def test_ls_long_shows_each_files_digest_and_a_dash_where_there_is_none(logged: Path, source: Path) -> None:
    (logged / "unrecorded.txt").write_bytes(b"written behind artifact_fs's back")
    code, out, _ = invoke("ls", str(logged), "--long")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["6", sha256(FILES["a.txt"]), "a.txt"],
        ["-", "-", "sub/"],
        ["33", "-", "unrecorded.txt"],
    ]

    code, out, _ = invoke("ls", str(logged), "-r", "--long", "--json")
    assert code == 0
    entries = {entry["path"]: entry for entry in json.loads(out)}
    assert entries["sub/deep/c.json"] == {
        "path": "sub/deep/c.json",
        "is_dir": False,
        "file_size": 2,
        "digest": sha256(b"{}"),
    }
    assert entries["unrecorded.txt"]["digest"] is None
    assert "digest" not in entries["sub"]


def test_json_names_every_file_that_does_not_check(logged: Path) -> None:
    (logged / "sub" / "deep" / "c.json").write_bytes(b"[]")  # same size, other bytes
    (logged / "new.txt").write_bytes(b"new")
    code, out, _ = invoke("verify", str(logged), "--json")
    assert code == 1
    assert json.loads(out) == {
        "files": 4,
        "bytes": 1048587,
        "ok": 2,
        "recorded": [],
        "damaged": [{"path": "sub/deep/c.json", "expected": sha256(b"{}"), "actual": sha256(b"[]")}],
        "no_digest": ["new.txt"],
        "unreadable": [],
    }


def test_a_file_path_verifies_that_file_and_a_missing_one_fails(logged: Path) -> None:
    code, out, _ = invoke("verify", str(logged), "sub/b.bin", "--quiet")
    assert (code, out) == (0, "")
    code, out, err = invoke("verify", str(logged), "sub/nope.bin")
    assert code == 1
    assert err.startswith(f"artifact-fs: error: {logged}: FileNotFoundError: No such artifact")


def test_an_empty_root_verifies_nothing(tmp_path: Path) -> None:
    assert invoke("verify", str(tmp_path)) == (
        0,
        "verified 0 files (0 bytes): 0 ok, 0 damaged, 0 without a digest, 0 unreadable\n",
        "",
    )


def test_verify_with_digests_turned_off_is_a_usage_error(logged: Path) -> None:
    code, _, err = invoke("verify", str(logged), env=DIGESTS_OFF)
    assert code == 2
    assert "ARTIFACT_FS_DIGESTS=false" in err


def test_a_local_file_replaced_by_rename_has_no_digest(logged: Path, tmp_path: Path) -> None:
    """MLflow's own writes os.replace a new file into place; its record does not follow it."""
    target = logged / "a.txt"
    try:
        os.getxattr(target, "user.artifact_fs.digest")
    except OSError:
        pytest.skip("this filesystem keeps no user extended attributes (records are sidecars here)")
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"replaced\n")
    os.replace(replacement, target)
    code, out, _ = invoke("verify", str(logged))
    assert code == 1
    assert out.splitlines()[0] == "NO DIGEST a.txt"


# -- one store that keeps records apart from the objects: S3 (SeaweedFS) ------------------------------
@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from conformance.servers.seaweedfs import start_seaweedfs

    server = start_seaweedfs(tmp_path_factory.mktemp("logs"), tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.create_bucket("verify")
        yield server
    finally:
        server.stop()


@pytest.mark.s3
def test_s3_an_object_overwritten_through_the_sdk_is_damaged(seaweedfs: Any, source: Path) -> None:
    uri = "s3://verify/0/run/artifacts"
    env = seaweedfs.environ()  # configured by MLflow's variables only
    assert invoke("log", str(source), uri, env=env)[0] == 0
    assert invoke("verify", uri, env=env)[0] == 0

    seaweedfs.client().put_object(Bucket="verify", Key="0/run/artifacts/sub/b.bin", Body=b"other bytes")
    code, out, _ = invoke("verify", uri, env=env)
    assert code == 1
    assert out.splitlines()[0] == (
        f"DAMAGED sub/b.bin: expected {sha256(FILES['sub/b.bin'])}, got {sha256(b'other bytes')}"
    )

    code, out, _ = invoke("ls", uri, "sub", "--long", env=env)
    assert out.split()[:3] == ["11", sha256(FILES["sub/b.bin"]), "sub/b.bin"]


def test_cat_of_a_damaged_file_fails_and_withholds_its_last_chunk(logged: Path) -> None:
    intact = CliRunner().invoke(main, ["cat", str(logged), "sub/b.bin"])
    assert (intact.exit_code, intact.stdout_bytes) == (0, FILES["sub/b.bin"])
    with (logged / "sub" / "b.bin").open("r+b") as file:
        file.write(b"\xff")
    result = CliRunner().invoke(main, ["cat", str(logged), "sub/b.bin"])
    assert result.exit_code == 1
    assert result.stdout_bytes == b""  # one chunk (1 MiB), withheld
    assert "DigestMismatchError" in result.stderr
    assert "'sub/b.bin' does not match its recorded digest" in result.stderr
