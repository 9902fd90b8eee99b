#!/usr/bin/env bash
# MLflow in its own virtual environment (it pins an older pyarrow than ours); tests drive it as a
# subprocess, both as a server and as a client for differential tests.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${ARTIFACT_FS_MLFLOW_VENV:-$here/.cache/mlflow-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q \
  "mlflow==3.17.2" boto3 google-cloud-storage azure-storage-blob azure-storage-file-datalake \
  azure-identity pysftp paramiko psycopg2-binary
"$venv/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__, 'in', '$venv')"
