#!/bin/sh
# Beat is healthy while it ticks: evpay.beat.HeartbeatScheduler touches the heartbeat file every few seconds.
# Used by the Compose healthcheck and the Kubernetes liveness probe of beat.
file=${CELERY_BEAT_HEARTBEAT_FILE:-/tmp/celerybeat-heartbeat}
max_age=${BEAT_HEARTBEAT_MAX_AGE:-120}
[ -f "$file" ] || { echo "no beat heartbeat at $file" >&2; exit 1; }
age=$(( $(date +%s) - $(stat -c %Y "$file") ))
[ "$age" -lt "$max_age" ] || { echo "beat heartbeat is ${age}s old (limit ${max_age}s)" >&2; exit 1; }
