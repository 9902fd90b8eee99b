"""Where the test run's MLflow lives: its own virtual environment, driven as a subprocess."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def mlflow_venv() -> Path:
    return Path(os.environ.get("ARTIFACT_FS_MLFLOW_VENV", REPO / ".cache" / "mlflow-venv"))


def mlflow_python() -> str:
    """The interpreter that has MLflow installed (``scripts/install/20-mlflow.sh`` makes it)."""
    python = mlflow_venv() / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"MLflow's virtual environment is missing at {python.parent.parent}; "
            "run scripts/install/20-mlflow.sh (scripts/test-all.sh does)"
        )
    return str(python)


def mlflow_bin(name: str = "mlflow") -> str:
    return str(Path(mlflow_python()).parent / name)


def run_mlflow_python(
    code: str, env: Mapping[str, str] | None = None, timeout: float = 300, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in MLflow's interpreter; raise with its output if it fails."""
    completed = subprocess.run(
        [mlflow_python(), "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"MLflow subprocess failed ({completed.returncode}):\nstdout:\n{completed.stdout}\n"
            f"stderr:\n{completed.stderr[-6000:]}"
        )
    return completed


def run_mlflow_cli(*args: str, env: Mapping[str, str], timeout: float = 300) -> str:
    """``mlflow <args>`` with exactly ``env``; its stdout, or an AssertionError with its stderr."""
    done = subprocess.run(
        [mlflow_bin(), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
