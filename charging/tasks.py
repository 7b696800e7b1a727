import logging

from celery import shared_task
from django.conf import settings

from evpay.core.errors import DomainError
from infrastructure.adapters.base import AdapterUnavailable

from . import services
from .models import ChargeSession

logger = logging.getLogger(__name__)


def _retry_delay(task, base: float) -> float:
    return min(base * 2**task.request.retries, settings.CHARGE_RETRY_MAX_DELAY)


def _retry_unsent(task, session_id: str, command: str, exc: AdapterUnavailable):
    """A command is sent again only when it certainly never reached the CPMS (disabled, circuit open, connection
    refused). One that may have arrived (a timeout, a 5xx, a malformed answer) is never repeated: its outcome
    comes from the CPMS, or from the start timeout, which fails the session and sends a stop."""
    if not exc.not_sent:
        logger.warning("%s of %s may have reached the CPMS (%s); not sending it again", command, session_id, exc)
        return None
    logger.info("%s of %s not sent (%s); retrying", command, session_id, exc)
    raise task.retry(countdown=_retry_delay(task, settings.CHARGE_COMMAND_RETRY_DELAY)) from exc


# The command tasks are acknowledged on receipt (acks_late off, unlike the project default): a worker that dies after
# the command left must not have the message redelivered and the command sent again. One lost before it was sent
# ends like an unanswered start: the start timeout fails the session, voids the hold and sends a stop.
@shared_task(bind=True, max_retries=None, acks_late=False)
def charge_session_send_start(self, session_id: str) -> str | None:
    """Start command to the CPMS. Retried while it certainly was not sent; the start-timeout job ends the wait."""
    session = ChargeSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    try:
        return services.charge_session_start_command_send(session=session).status
    except AdapterUnavailable as exc:
        return _retry_unsent(self, session_id, "Start", exc)


@shared_task(bind=True, max_retries=10, acks_late=False)
def charge_session_send_stop(self, session_id: str) -> str | None:
    """Stop command to the CPMS (cost cap reached, a start that timed out, a late acceptance of a failed
    session)."""
    session = ChargeSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    try:
        return services.charge_session_stop_command_send(session=session).outcome.value
    except AdapterUnavailable as exc:
        return _retry_unsent(self, session_id, "Stop", exc)


@shared_task(bind=True, max_retries=None)
def charge_session_settle(self, session_id: str) -> str | None:
    """Capture (or void) the payment of an ended session whose first try failed. Retried, backing off, until it
    succeeds or the authorization expires (then the payments expiry job releases the hold)."""
    session = ChargeSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    try:
        session = services.charge_session_payment_settle(session=session, schedule_retry=False)
    except DomainError as exc:
        logger.info("Settling %s failed (%s); retrying", session_id, exc)
        raise self.retry(countdown=_retry_delay(self, settings.CHARGE_PAYMENT_RETRY_DELAY)) from exc
    return session.payment_intent.status


@shared_task
def fail_unstarted_sessions() -> int:
    """Beat: sessions pending past CHARGE_START_TIMEOUT fail and release their hold."""
    return services.charge_sessions_fail_unstarted()


@shared_task
def complete_stale_sessions() -> int:
    """Beat: sessions without a reading for CHARGE_STALE_AFTER are completed (`timeout`) and captured."""
    return services.charge_sessions_complete_stale()
