#!/usr/bin/env bash
# PostgreSQL (Debian's package) for the one gc test that runs MLflow on a PostgreSQL backend store.
# Idempotent and quiet; without root it installs nothing and that test is skipped, saying why (in CI,
# CI=true, it fails instead).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "15-postgres: not root, so postgresql is not installed; the PostgreSQL gc test will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
