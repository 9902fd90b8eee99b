#!/usr/bin/env bash
# Install everything the tests need (pip, npm, Debian and Maven packages, MLflow in its own venv),
# then run lint, type checks, unit tests and the conformance suite against real servers.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
# The servers store their data under the temp directory and SeaweedFS turns read-only below 1% free
# space: with a nearly full disk the suite fails by the hundreds, far from the cause. Say it first.
need_kib=$((8 * 1024 * 1024))
for dir in "$here" "${TMPDIR:-/tmp}"; do
  free_kib=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
  if [ "$free_kib" -lt "$need_kib" ]; then
    echo "test-all: only $((free_kib / 1024)) MiB free on the disk of $dir; the suite needs 8 GiB" >&2
    exit 1
  fi
done
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
