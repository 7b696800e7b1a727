from celery import shared_task

from evpay.core.services import idempotency_keys_prune


@shared_task
def prune_idempotency_keys() -> int:
    return idempotency_keys_prune()
