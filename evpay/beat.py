"""The Celery beat schedule, in one place. The README's "Periodic jobs" table describes each entry."""

from datetime import timedelta

BEAT_SCHEDULE = {
    # Authorizations past capture_before: release the hold, mark expired.
    "payments-expire-authorizations": {
        "task": "payments.tasks.expire_authorizations",
        "schedule": timedelta(minutes=1),
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
}
