#!/usr/bin/env bash
# Install everything the tests need (pip, npm, Debian and Maven packages, MLflow in its own venv),
# then run lint, type checks, unit tests and the conformance suite against real servers.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
for step in scripts/install/*.sh; do
  echo "== install: $step"
  bash "$step"
done
echo "== ruff"
.venv/bin/ruff check artifact_fs conformance tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest tests conformance "$@"
