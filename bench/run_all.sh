#!/usr/bin/env bash
# `make bench`: every benchmark in bench/, against PostgreSQL and Redis on localhost, in about 15 minutes.
# bench/side_by_side.py is the one that measures evpay against a bare reference (bench/README.md); the others
# run here at reduced sizes (their own defaults are larger: run them alone for those). Databases and Redis:
# BENCH_*_DATABASE, BENCH_DATABASE_URL (webhooks) and CELERY_BROKER_URL, see each script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
echo "### bench/side_by_side.py"
"$PY" bench/side_by_side.py
echo "### bench/infrastructure.py (5,000 stations)"
"$PY" bench/infrastructure.py --database "${BENCH_INFRASTRUCTURE_DATABASE:-evpay_bench_infrastructure}" --stations 5000 --calls 50000 --poll-stations 1000 --runs 10
echo "### bench/terminals.py (20,000 terminals, 200,000 events)"
"$PY" bench/terminals.py --database "${BENCH_TERMINALS_DATABASE:-evpay_bench_terminals}" --terminals 20000 --events 200000 --ingest-seconds 10 --stats-runs 20
echo "### bench/webhooks_delivery.py"
"$PY" bench/webhooks_delivery.py --events 1000 --latency-events 100
