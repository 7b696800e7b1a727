#!/usr/bin/env bash
# `make run`: migrate, seed the demo operator, then serve the API (gunicorn) with a Celery worker and beat.
# Embedded defaults: SQLite and a filesystem broker; set DATABASE_URL / CELERY_BROKER_URL for PostgreSQL / Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-evpay.settings.local}
PORT=${PORT:-8000}
# Where a CPMS (an OCPI CPO) calls us back: this server, unless set.
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:${PORT}}
mkdir -p var/broker/processed
# Web and worker processes count into one directory; /metrics merges it (see evpay/metrics.py).
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

# The demo's webhooks go to a local receiver (manage.py webhooks_listen): plain http on the loopback, which a
# deployment refuses by default (contract section 4).
export WEBHOOK_ALLOW_HTTP=${WEBHOOK_ALLOW_HTTP:-1}
export WEBHOOK_ALLOWED_NETWORKS=${WEBHOOK_ALLOWED_NETWORKS:-127.0.0.0/8,::1/128}

"$PY" manage.py migrate --noinput -v 0
API_KEY=$("$PY" manage.py seed_demo 2>var/seed.log)
cat var/seed.log >&2

# Each service runs in a process group of its own (job control), so a Ctrl-C or a signal to this script's
# group reaches only this script: its trap stops each service through its main process, the way the service
# expects. (Signalled all at once, Celery's pool children can die holding a queue lock, and the worker then
# hangs at exit.)
set -m
pids=()
cleanup() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 60); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

"$BIN/celery" -A evpay worker --loglevel INFO --concurrency 2 &
pids+=($!)
"$BIN/celery" -A evpay beat --loglevel INFO &
pids+=($!)
GUNICORN_BIND="127.0.0.1:${PORT}" "$BIN/gunicorn" evpay.wsgi:application &
pids+=($!)
# The demo subscription's receiver: verifies every delivery and writes one line per event to var/webhooks.log.
PYTHONUNBUFFERED=1 "$PY" manage.py webhooks_listen --operator "Demo CPO" >var/webhooks.log 2>&1 &
pids+=($!)
# The demo terminals keep sending heartbeats, so the estate stays online.
PYTHONUNBUFFERED=1 "$PY" manage.py demo_heartbeats --interval 60 >var/demo-heartbeats.log 2>&1 &
pids+=($!)

cat <<BANNER

  evpay is running on http://127.0.0.1:${PORT}
    API docs   http://127.0.0.1:${PORT}/api/docs
    admin      http://127.0.0.1:${PORT}/admin/  (demo-admin / demo-admin-password)
    webhooks   tail -f var/webhooks.log   (every demo event, signature verified)
  Demo API key (shown once):
EVPAY_API_KEY=${API_KEY}

BANNER
wait -n "${pids[@]}"
