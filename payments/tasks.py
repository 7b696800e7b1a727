import logging

from celery import shared_task

from evpay.core.errors import DomainError

from .processors import ProcessorError
from .selectors import payment_intents_due_for_expiry
from .services import payment_intent_expire, refunds_retry_pending

logger = logging.getLogger(__name__)


@shared_task
def expire_authorizations() -> int:
    """Beat: authorized intents past capture_before get their hold released and become expired."""
    expired = 0
    for intent in payment_intents_due_for_expiry():
        try:
            payment_intent_expire(intent=intent)
            expired += 1
        except (DomainError, ProcessorError) as exc:  # captured meanwhile, or processor down: next run retries
            logger.info("Not expiring %s now: %s", intent.id, exc)
    return expired


@shared_task
def retry_pending_refunds() -> int:
    """Beat: refunds left pending by an unavailable processor are sent again (same idempotency key)."""
    return refunds_retry_pending()
