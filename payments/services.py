"""Payment intent writes. Every transition locks the row, re-checks the state inside the lock and writes
its event in the same transaction. Processor calls happen outside any transaction: the intent is first
claimed (`processing_action`), then the processor is called, then the result is recorded."""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from evpay.core.errors import (
    DomainError,
    InvalidState,
    PaymentDeclined,
    UpstreamUnavailable,
    ValidationFailed,
)
from evpay.core.models import Operator
from evpay.core.queries import PreparedQuery, row_insert, row_update
from evpay.core.transitions import transition_allowed, transition_check
from terminals.models import Terminal

from . import metrics, selectors
from .events import payment_intent_event_emit, refund_event_emit
from .models import (
    PAYMENT_INTENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    PaymentIntent,
    PaymentIntentStatus,
    Refund,
    RefundStatus,
    StripeAccount,
    VoidReason,
)
from .processors import (
    InvalidPaymentMethod,
    PaymentProcessor,
    ProcessorDeclined,
    ProcessorError,
    ProcessorRefused,
    ProcessorUnavailable,
    get_processor,
)

logger = logging.getLogger(__name__)

#: A check a claim makes on the locked intent (raises to refuse).
Check = Callable[[PaymentIntent], None]

_ACTION_VERBS = {"authorize": "authorized", "capture": "captured", "void": "voided", "expire": "expired"}
_ACTION_EVENTS = {action: f"payment_intent.{verb}" for action, verb in _ACTION_VERBS.items()}


class AuthorizationExpired(DomainError):
    status_code, code, title = 409, "authorization_expired", "Authorization expired"


class AmountExceedsCapturable(DomainError):
    status_code, code, title = 400, "amount_exceeds_capturable", "Amount exceeds capturable"


class ProcessorRejected(DomainError):
    """The processor answered and refused a capture or void (e.g. its hold is gone): nothing changed here."""

    status_code, code, title = 502, "processor_unavailable", "Processor refused the request"


class AmountExceedsRefundable(DomainError):
    status_code, code, title = 400, "amount_exceeds_refundable", "Amount exceeds refundable"


_LOCKED_INTENT = PreparedQuery(lambda pk: PaymentIntent.objects.select_for_update().filter(pk=pk), "pk")


def _lock(intent: PaymentIntent) -> PaymentIntent:
    locked = _LOCKED_INTENT.first(pk=intent.pk)
    if locked is None:
        raise PaymentIntent.DoesNotExist(f"Payment intent {intent.pk} was deleted.")
    return locked


def _check_transition(intent: PaymentIntent, action: str) -> None:
    """Whether `action` may happen to `intent` now: the table in payments.models, then what it cannot say."""
    transition_check(
        PAYMENT_INTENT_TRANSITIONS,
        action=action,
        status=intent.status,
        refusal=lambda allowed_from: (
            f"Payment intent {intent.id} is {intent.status}; only an intent that is "
            f"{' or '.join(sorted(allowed_from))} can be {_ACTION_VERBS[action]}."
        ),
    )
    if action in ("capture", "void"):
        # Asked of the charging app through the seam in payments.selectors; absent for intents no session uses.
        use = selectors.intent_uses(intent_ids=[intent.pk]).get(intent.pk)
        if use is not None and use.running:
            raise InvalidState(
                f"Payment intent {intent.id} pays for charge session {use.session_id}, which is {use.status}; "
                f"it is captured or voided when the session ends."
            )
    if _claim_is_live(intent):
        raise InvalidState(
            f"Payment intent {intent.id} is being {_ACTION_VERBS[str(intent.processing_action)]} by another request."
        )


def _claim_is_live(intent: PaymentIntent) -> bool:
    if intent.processing_action is None:
        return False
    stale_before = timezone.now() - timedelta(seconds=settings.PAYMENT_PROCESSOR_CLAIM_TIMEOUT)
    return intent.processing_started_at is not None and intent.processing_started_at > stale_before


def _apply(intent: PaymentIntent, action: str, **fields: Any) -> PaymentIntent:
    """Move a locked intent along `action`, clear its claim, save and emit the event."""
    _, target = PAYMENT_INTENT_TRANSITIONS[action]
    intent.status = target
    intent.processing_action = None
    intent.processing_started_at = None
    for name, value in fields.items():
        setattr(intent, name, value)
    # Only what the transition changes (the row is locked: nothing else can have changed meanwhile).
    row_update(intent, ["status", "processing_action", "processing_started_at", "updated_at", *fields])
    payment_intent_event_emit(intent=intent, type=_ACTION_EVENTS[action])
    metrics.intent_transition_recorded(intent=intent, action=action)
    return intent


def _claim(intent: PaymentIntent, action: str, check: Check | None = None) -> PaymentIntent:
    """Mark the intent as being worked on by `action`, in a short transaction of its own."""
    with transaction.atomic():
        intent = _lock(intent)
        _check_transition(intent, action)
        if check:
            check(intent)
        intent.processing_action = action
        intent.processing_started_at = timezone.now()
        # Bookkeeping, not a change the client sees: updated_at stays as it is.
        row_update(intent, ["processing_action", "processing_started_at"])
    return intent


def _release(intent: PaymentIntent) -> None:
    PaymentIntent.objects.filter(pk=intent.pk, processing_action=intent.processing_action).update(
        processing_action=None, processing_started_at=None
    )


def _claim_and_call(
    intent: PaymentIntent, action: str, call: Callable[[Any, PaymentIntent], Any], check: Check | None = None
) -> tuple[PaymentIntent, Any]:
    """Claim the intent for `action`, then make the processor call `call(processor, intent)` with no
    transaction open; returns the claimed intent and what the call returned. A failed call releases the claim
    and leaves the intent as it was."""
    intent = _claim(intent, action, check)
    try:
        result = call(get_processor(intent.processor, operator_id=intent.operator_id), intent)
    except ProcessorUnavailable as unavailable:
        _release(intent)
        raise _unavailable(unavailable) from unavailable
    except ProcessorRefused as refused:
        _release(intent)
        raise ProcessorRejected(f"The payment processor refused it: {refused}. Nothing changed.") from refused
    except BaseException:
        _release(intent)
        raise
    return intent, result


def _reference(intent: PaymentIntent) -> str:
    """The processor's reference of an intent it has authorized (only such intents are captured, voided at the
    processor or refunded)."""
    return cast(str, intent.processor_reference)


def _release_hold(processor: PaymentProcessor, intent: PaymentIntent) -> None:
    # void and expire release the same hold: one key, so that the hold is released once.
    processor.void(reference=_reference(intent), idempotency_key=f"{intent.id}:cancel")


def _unavailable(exc: ProcessorUnavailable) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"The payment processor did not answer: {exc}. Nothing changed; safe to retry.")


def payment_intent_create(
    *,
    operator: Operator,
    amount: int,
    currency: str,
    terminal: Terminal | None = None,
    description: str = "",
    metadata: dict | None = None,
) -> PaymentIntent:
    if terminal is not None and terminal.operator_id != operator.pk:
        raise ValidationFailed(f"No terminal {terminal.pk!r}.", errors={"terminal_id": ["Unknown terminal."]})
    intent = PaymentIntent(
        operator=operator,
        amount=amount,
        currency=currency,
        terminal=terminal,
        description=description or "",
        metadata=metadata or {},
        processor=settings.PAYMENT_PROCESSOR,
    )
    # No savepoint: nothing in here raises on purpose, and a database error fails the whole request anyway (the
    # API's create is one transaction, evpay.api.views). One plain INSERT: every create writes it.
    with transaction.atomic(savepoint=False):
        row_insert(intent)
        payment_intent_event_emit(intent=intent, type="payment_intent.created")
    return intent


def payment_intent_authorize(*, intent: PaymentIntent, token: str) -> PaymentIntent:
    def authorize(processor: PaymentProcessor, claimed: PaymentIntent) -> Any:
        try:
            return processor.authorize(
                amount=claimed.amount,
                currency=claimed.currency,
                token=token,
                idempotency_key=f"{claimed.id}:authorize:{claimed.authorization_attempts}",
                metadata={"evpay_payment_intent_id": claimed.id},
            )
        except ProcessorDeclined as declined:
            # Recorded while the claim is still held; `_claim_and_call` releases it.
            with transaction.atomic():
                locked = _lock(claimed)
                locked.last_payment_error = {
                    "code": "card_declined",
                    "decline_code": declined.decline_code,
                    "message": declined.message,
                }
                locked.authorization_attempts += 1
                locked.save()
                payment_intent_event_emit(intent=locked, type="payment_intent.authorization_failed")
            raise PaymentDeclined(
                f"Payment intent {claimed.id}: {declined.message}", extra={"decline_code": declined.decline_code}
            ) from declined
        except InvalidPaymentMethod as invalid:
            raise ValidationFailed(
                str(invalid), code="invalid_payment_method", errors={"payment_method": {"token": [str(invalid)]}}
            ) from invalid

    intent, result = _claim_and_call(intent, "authorize", authorize)
    now = timezone.now()
    with transaction.atomic():
        intent = _lock(intent)
        return _apply(
            intent,
            "authorize",
            amount_authorized=intent.amount,
            amount_capturable=intent.amount,
            authorized_at=now,
            capture_before=now + timedelta(seconds=settings.PAYMENT_AUTHORIZATION_TTL),
            payment_method={
                "type": "card_present",
                "brand": result.brand,
                "last4": result.last4,
                "fingerprint": result.fingerprint,
            },
            processor_reference=result.reference,
            authorization_code=result.authorization_code,
            last_payment_error=None,
        )


def payment_intent_capture(*, intent: PaymentIntent, amount_to_capture: int | None = None) -> PaymentIntent:
    def amount_of(claimed: PaymentIntent) -> int:
        return claimed.amount_capturable if amount_to_capture is None else amount_to_capture

    def check(locked: PaymentIntent) -> None:
        if locked.capture_before is not None and timezone.now() >= locked.capture_before:
            raise AuthorizationExpired(
                f"The authorization of payment intent {locked.id} expired at {locked.capture_before.isoformat()}."
            )
        amount = amount_of(locked)
        if amount <= 0:
            raise ValidationFailed(
                "amount_to_capture must be greater than 0.",
                errors={"amount_to_capture": ["Ensure this value is greater than 0."]},
            )
        if amount > locked.amount_capturable:
            raise AmountExceedsCapturable(
                f"amount_to_capture {amount} exceeds amount_capturable {locked.amount_capturable}.",
                errors={"amount_to_capture": [f"At most {locked.amount_capturable}."]},
            )

    def capture(processor: PaymentProcessor, claimed: PaymentIntent) -> None:
        processor.capture(
            reference=_reference(claimed),
            currency=claimed.currency,
            amount=amount_of(claimed),
            idempotency_key=f"{claimed.id}:capture",
        )

    claimed, _ = _claim_and_call(intent, "capture", capture, check)
    with transaction.atomic():
        intent = _lock(claimed)
        return _apply(
            intent, "capture", amount_captured=amount_of(claimed), amount_capturable=0, captured_at=timezone.now()
        )


def payment_intent_void(*, intent: PaymentIntent, reason: str | None = None) -> PaymentIntent:
    reason = reason or VoidReason.REQUESTED_BY_CUSTOMER
    with transaction.atomic():
        locked = _lock(intent)
        _check_transition(locked, "void")
        if locked.status == PaymentIntentStatus.REQUIRES_AUTHORIZATION:
            # Nothing is held at the processor: no call to make.
            return _apply(locked, "void", void_reason=reason, voided_at=timezone.now(), amount_capturable=0)

    intent, _ = _claim_and_call(intent, "void", _release_hold)
    with transaction.atomic():
        intent = _lock(intent)
        return _apply(intent, "void", void_reason=reason, voided_at=timezone.now(), amount_capturable=0)


def payment_intent_expire(*, intent: PaymentIntent) -> PaymentIntent:
    """Release the hold of an authorization past capture_before and mark the intent expired."""

    def check(locked: PaymentIntent) -> None:
        if locked.capture_before is None or locked.capture_before > timezone.now():
            raise InvalidState(f"Payment intent {locked.id} has not reached capture_before yet.")

    intent, _ = _claim_and_call(intent, "expire", _release_hold, check)
    with transaction.atomic():
        intent = _lock(intent)
        return _apply(intent, "expire", amount_capturable=0, expired_at=timezone.now(), void_reason=VoidReason.EXPIRED)


# --- refunds --------------------------------------------------------------------------------------------------


def refund_create(
    *,
    intent: PaymentIntent,
    amount: int | None = None,
    reason: str | None = None,
    metadata: dict | None = None,
) -> Refund:
    """Refund `amount` (default: all still refundable) of a captured intent.

    The amount is reserved on the intent (`amount_refund_pending`) under its row lock, together with the
    pending refund and its event; then the processor is called with no transaction open; then the outcome is
    recorded. Parallel refunds therefore never add up to more than `amount_captured`. A processor that is
    unavailable leaves the refund pending with its amount reserved: `refunds_retry_pending` sends it again with
    the same idempotency key, so it is refunded exactly once."""
    with transaction.atomic():
        locked = _lock(intent)
        if locked.status != PaymentIntentStatus.CAPTURED:
            raise InvalidState(
                f"Payment intent {locked.id} is {locked.status}; only a captured intent can be refunded."
            )
        if amount is not None and amount <= 0:
            raise ValidationFailed(
                "amount must be greater than 0.", errors={"amount": ["Ensure this value is greater than 0."]}
            )
        refundable = locked.amount_refundable
        amount = refundable if amount is None else amount
        if amount > refundable or amount == 0:  # 0: nothing is left to refund
            raise AmountExceedsRefundable(
                f"Payment intent {locked.id} has {refundable} left to refund "
                f"(captured {locked.amount_captured}, refunded {locked.amount_refunded}, "
                f"pending {locked.amount_refund_pending}); {amount} asked.",
                errors={"amount": [f"At most {refundable}."]},
            )
        refund = Refund.objects.create(
            operator_id=locked.operator_id,
            payment_intent=locked,
            amount=amount,
            currency=locked.currency,
            reason=reason,
            metadata=metadata or {},
            attempted_at=timezone.now(),
            attempts=1,
        )
        # Bookkeeping, not a change the client sees: updated_at stays as it is.
        PaymentIntent.objects.filter(pk=locked.pk).update(amount_refund_pending=F("amount_refund_pending") + amount)
        refund_event_emit(refund=refund, type="refund.created")
    return _refund_send(refund, locked)


def _refund_send(refund: Refund, intent: PaymentIntent) -> Refund:
    """One processor call for a pending refund, outside any transaction, then its outcome recorded."""
    try:
        reference = get_processor(intent.processor, operator_id=intent.operator_id).refund(
            reference=_reference(intent),
            amount=refund.amount,
            currency=refund.currency,
            idempotency_key=f"{refund.id}:refund",
            metadata={"evpay_refund_id": refund.id, "evpay_payment_intent_id": intent.id},
        )
    except ProcessorUnavailable as exc:
        logger.warning("Refund %s stays pending, the processor did not answer: %s", refund.id, exc)
        return refund
    except ProcessorError as exc:
        return _refund_finish(refund, "fail", failure_reason=str(exc) or exc.__class__.__name__)
    return _refund_finish(refund, "succeed", processor_reference=reference)


def _refund_finish(refund: Refund, action: str, **fields: Any) -> Refund:
    """Move a pending refund along `action`, release its reservation and, when it succeeded, add it to the
    intent's amount_refunded; events in the same transaction. A refund another attempt finished is left."""
    with transaction.atomic():
        intent = PaymentIntent.objects.select_for_update().get(pk=refund.payment_intent_id)
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if not transition_allowed(REFUND_TRANSITIONS, action=action, status=locked.status):
            return locked
        locked.status = REFUND_TRANSITIONS[action][1]
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        if action == "succeed":
            intent.amount_refund_pending -= locked.amount
            intent.amount_refunded += locked.amount
            intent.save()
            refund_event_emit(refund=locked, type="refund.succeeded")
            payment_intent_event_emit(intent=intent, type="payment_intent.refunded")
            metrics.money_moved(operation="refund", currency=locked.currency, amount=locked.amount)
        else:
            PaymentIntent.objects.filter(pk=intent.pk).update(
                amount_refund_pending=F("amount_refund_pending") - locked.amount
            )
            refund_event_emit(refund=locked, type="refund.failed")
    return locked


def refunds_retry_pending(*, limit: int = 100) -> int:
    """Beat: pending refunds whose last processor attempt is older than PAYMENT_PROCESSOR_CLAIM_TIMEOUT (the
    processor was unavailable, or the process died mid-call) are sent again with the same idempotency key.
    Returns how many ended (succeeded or failed)."""
    ended = 0
    stale_before = timezone.now() - timedelta(seconds=settings.PAYMENT_PROCESSOR_CLAIM_TIMEOUT)
    for refund in selectors.refunds_due_for_retry(stale_before=stale_before, limit=limit):
        # Claimed by a conditional update: a parallel run (or a request) that got there first wins.
        claimed = Refund.objects.filter(
            pk=refund.pk, status=RefundStatus.PENDING, attempted_at__lt=stale_before
        ).update(attempted_at=timezone.now(), attempts=F("attempts") + 1)
        if claimed and _refund_send(refund, refund.payment_intent).status != RefundStatus.PENDING:
            ended += 1
    return ended


# --- an operator's own Stripe key -----------------------------------------------------------------------------


def stripe_secret_key_check(secret_key: str) -> str:
    secret_key = secret_key.strip()
    if not secret_key.startswith(("sk_", "rk_")) or len(secret_key) < 12:
        raise ValidationFailed(
            "A Stripe secret key starts with sk_ (or rk_ for a restricted key).",
            errors={"secret_key": ["Not a Stripe secret key."]},
        )
    return secret_key


def stripe_account_set(*, operator: Operator, secret_key: str) -> StripeAccount:
    """Store (encrypted) the operator's own Stripe secret or restricted key; its intents use it from now on."""
    secret_key = stripe_secret_key_check(secret_key)
    hint = f"{secret_key[:8]}…{secret_key[-4:]}"
    with transaction.atomic():
        account, _ = StripeAccount.objects.select_for_update().update_or_create(
            operator=operator, defaults={"secret_key": secret_key, "key_hint": hint}
        )
    return account
