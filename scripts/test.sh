#!/usr/bin/env bash
# `make test`: the whole suite against PostgreSQL and Redis on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DB_HOST=${PGHOST:-127.0.0.1}

missing=0
if ! "$PY" - <<'PY'
import socket, sys
for port in (5432,):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        sys.exit(1)
PY
then
  echo "PostgreSQL is not answering on ${DB_HOST}:5432. Start it, e.g.:" >&2
  echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
  missing=1
fi
if ! "$PY" -c "import redis,sys; redis.Redis(host='127.0.0.1', socket_timeout=2).ping()" 2>/dev/null; then
  echo "Redis is not answering on 127.0.0.1:6379. Start it, e.g.:" >&2
  echo "  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no" >&2
  missing=1
fi
[ "$missing" = 0 ] || exit 1

exec "$PY" -m pytest "$@"
