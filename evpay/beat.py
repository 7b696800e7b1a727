"""The Celery beat schedule, in one place. The README's "Periodic jobs" table describes each entry."""

from datetime import timedelta
from pathlib import Path

from celery.beat import PersistentScheduler

BEAT_SCHEDULE = {
    # Authorizations past capture_before: release the hold, mark expired.
    "payments-expire-authorizations": {
        "task": "payments.tasks.expire_authorizations",
        "schedule": timedelta(minutes=1),
    },
    # Refunds left pending by an unavailable processor: sent again with the same idempotency key.
    "payments-retry-pending-refunds": {
        "task": "payments.tasks.retry_pending_refunds",
        "schedule": timedelta(seconds=30),
    },
    # Idempotency keys are kept at least 24 h, then pruned.
    "core-prune-idempotency-keys": {
        "task": "evpay.core.tasks.prune_idempotency_keys",
        "schedule": timedelta(hours=1),
    },
    # Silent terminals -> offline (with events); errors_24h drops errors older than 24 h.
    "terminals-aggregate-health": {
        "task": "terminals.tasks.aggregate_health",
        "schedule": timedelta(minutes=1),
    },
    # Health events past TERMINAL_HEALTH_RETENTION_DAYS are deleted.
    "terminals-prune-health-events": {
        "task": "terminals.tasks.prune_health_events",
        "schedule": timedelta(hours=1),
    },
    # Sessions the CPMS never confirmed within CHARGE_START_TIMEOUT: failed, hold voided.
    "charging-fail-unstarted-sessions": {
        "task": "charging.tasks.fail_unstarted_sessions",
        "schedule": timedelta(seconds=30),
    },
    # Sessions without a reading for CHARGE_STALE_AFTER: completed (`timeout`) and captured.
    "charging-complete-stale-sessions": {
        "task": "charging.tasks.complete_stale_sessions",
        "schedule": timedelta(minutes=1),
    },
    # CPMS connector statuses: each enabled adapter is polled at its own poll_interval_s (>= 10 s).
    "infrastructure-poll-connector-statuses": {
        "task": "infrastructure.tasks.poll_connector_statuses",
        "schedule": timedelta(seconds=10),
    },
    # CPMS adapter health: ping, drive half-open circuit trials, announce status changes.
    "infrastructure-probe-adapter-health": {
        "task": "infrastructure.tasks.probe_adapter_health",
        "schedule": timedelta(minutes=1),
    },
    # Per-call adapter records behind the 5-minute health figures: kept CPMS_CALL_RETENTION, then pruned.
    "infrastructure-prune-adapter-calls": {
        "task": "infrastructure.tasks.prune_adapter_calls",
        "schedule": timedelta(hours=1),
    },
    # Due webhook deliveries (retries, and any whose task message was lost) are sent again.
    "webhooks-sweep-deliveries": {
        "task": "webhooks.tasks.sweep_deliveries",
        "schedule": timedelta(seconds=5),
    },
    # Succeeded webhook deliveries older than WEBHOOK_RETENTION_DAYS are pruned with their payloads.
    "webhooks-prune-deliveries": {
        "task": "webhooks.tasks.prune_deliveries",
        "schedule": timedelta(hours=1),
    },
    # Events older than EVENT_RETENTION_DAYS (the events API keeps them at least that long) are pruned.
    "webhooks-prune-events": {
        "task": "webhooks.tasks.prune_events",
        "schedule": timedelta(hours=1),
    },
}


class HeartbeatScheduler(PersistentScheduler):
    """Touches CELERY_BEAT_HEARTBEAT_FILE on every tick (every few seconds: the shortest job runs every 5 s),
    so `scripts/healthcheck-beat.sh` can tell a beat that schedules from one that hangs or has died."""

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        from django.conf import settings

        try:
            Path(settings.CELERY_BEAT_HEARTBEAT_FILE).touch()
        except OSError:  # a missing directory must not stop the schedule; the healthcheck will say so
            pass
        return interval
