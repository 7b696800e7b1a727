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
}
