"""README command 1 (``pip install -e '.[all]'``) resolves fast with the pip a new virtual environment has.

pip 23.2's resolver backtracked for more than 13 minutes when the ``s3`` extra pinned ``boto3`` beside
``s3fs`` (boto3 and s3fs's aiobotocore each pin botocore, to different ranges). The static check is
free; the resolution check runs the real resolver (``pip install --dry-run``) in a fresh virtual
environment seeded by ``ensurepip``, with no pip upgrade, and needs the package index.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESOLVE_SECONDS = 120
"""README's promise is an install in under 2 minutes; resolving alone must fit in that."""
BOTOCORE_FAMILY = {"boto3", "botocore", "aiobotocore"}


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return extras


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def test_no_extra_pins_what_s3fs_pins_for_itself() -> None:
    """boto3/botocore/aiobotocore come from s3fs (``s3fs[boto3]`` if boto3 is wanted), never beside it."""
    for extra, requirements in _extras().items():
        named = {_name(requirement) for requirement in requirements}
        assert not named & BOTOCORE_FAMILY, (
            f"extra {extra!r} names {sorted(named & BOTOCORE_FAMILY)}: s3fs's aiobotocore pins botocore; "
            "use s3fs's own boto3 extra (s3fs[boto3]) so pip has one answer"
        )


def test_all_extra_names_every_other_runtime_extra() -> None:
    extras = _extras()
    (combined,) = extras["all"]
    named = set(combined.partition("[")[2].rstrip("]").split(","))
    assert named == set(extras) - {"all", "test"}


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=5):
            return True
    except OSError:
        return False


@pytest.mark.timeout(RESOLVE_SECONDS + 60)
def test_all_extras_resolve_in_a_fresh_venv_with_its_own_pip(tmp_path: Path) -> None:
    if os.environ.get("ARTIFACT_FS_SKIP_INSTALL_CHECK"):
        pytest.skip("ARTIFACT_FS_SKIP_INSTALL_CHECK is set")
    if not _index_reachable():
        pytest.skip("the package index is not reachable")
    base_python = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    version = subprocess.run([*pip, "--version"], capture_output=True, text=True, check=True).stdout
    try:
        completed = subprocess.run(
            [*pip, "install", "--dry-run", "--quiet", "--disable-pip-version-check", f"{ROOT}[all]"],
            capture_output=True,
            text=True,
            timeout=RESOLVE_SECONDS,
            check=False,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{version.strip()} was still resolving .[all] after {RESOLVE_SECONDS} s: {exc.stderr!r}")
    assert completed.returncode == 0, completed.stderr[-3000:]
