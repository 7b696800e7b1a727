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
}
