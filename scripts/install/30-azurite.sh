#!/usr/bin/env bash
# Azurite (the Azure Blob emulator) for the azure conformance tests, pinned by the committed
# package-lock.json. 3.35.0 is the last release that runs on node 20 (3.37 needs node >= 22).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$here/conformance/servers/azurite"
if ! command -v npm >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "npm is required for Azurite (install Node.js >= 18)" >&2
    exit 1
  fi
fi
installed="$dir/node_modules/azurite/package.json"
wanted="$(node -p "require('$dir/package-lock.json').packages['node_modules/azurite'].version")"
if [ -f "$installed" ] && [ "$(node -p "require('$installed').version")" = "$wanted" ]; then
  exit 0
fi
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
node -p "'azurite ' + require('$installed').version + ' in $dir'"
