#!/bin/sh
# Entry point of the image (web, worker, beat, migrate). Every process counts into PROMETHEUS_MULTIPROC_DIR
# under a name that carries its host name (evpay/prometheus.py). A start clears what this container's
# earlier processes left there, and nothing of the other containers sharing the directory (Compose).
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  host=$(tr '_' '-' </proc/sys/kernel/hostname)
  find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name "*_${host}-*.db" -delete
fi
exec "$@"
