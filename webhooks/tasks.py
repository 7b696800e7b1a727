from celery import shared_task
from django.conf import settings

from . import services

# An attempt is bounded by connect + read timeouts plus draining the response; the hard limit stays below
# the claim lease (services._claim_lease), so a delivery is never sent by two tasks at once.
_ATTEMPT_SECONDS = 3 * settings.WEBHOOK_TIMEOUT


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_ATTEMPT_SECONDS + 15,
    time_limit=_ATTEMPT_SECONDS + 25,
)
def deliver(delivery_id: str) -> None:
    """One attempt of one delivery. Safe to run twice: the claim under the row lock lets only one through."""
    services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def sweep_deliveries() -> int:
    """Beat: deliveries that are due and whose task message is late or lost."""
    return services.webhook_deliveries_sweep()


@shared_task(ignore_result=True)
def prune_deliveries() -> int:
    """Beat: succeeded deliveries older than WEBHOOK_RETENTION_DAYS."""
    return services.webhook_deliveries_prune()


@shared_task(ignore_result=True)
def prune_events() -> int:
    """Beat: events older than EVENT_RETENTION_DAYS, with their deliveries."""
    return services.events_prune()
