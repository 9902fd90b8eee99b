#!/usr/bin/env bash
# MLflow's SFTP repository imports pysftp 0.2.9, which needs paramiko's DSSKey: paramiko 4 removed
# it. Pin paramiko below 4 in MLflow's own venv so the SFTP differential tests can drive MLflow.
# Fast no-op when pysftp already imports.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${ARTIFACT_FS_MLFLOW_VENV:-$here/.cache/mlflow-venv}"
if "$venv/bin/python" -c "import pysftp" >/dev/null 2>&1; then
  exit 0
fi
"$venv/bin/python" -m pip install -q "paramiko>=3.4,<4" pysftp
"$venv/bin/python" -c "import pysftp"
