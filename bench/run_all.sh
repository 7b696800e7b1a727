#!/usr/bin/env bash
# `make bench`: every benchmark script in bench/, one after the other, against PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for script in bench/*.py; do
  echo "### $script"
  "$PY" "$script"
done
