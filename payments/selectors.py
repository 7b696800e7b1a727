from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import PaymentIntent, PaymentIntentStatus, Refund, RefundStatus, StripeAccount

# --- what pays with an intent (filled in by the charging app, in its AppConfig.ready) -------------------------


@dataclass(frozen=True)
class IntentUse:
    """A charge session paid by an intent: its id, status and whether it still runs."""

    session_id: str
    status: str
    running: bool


#: fn(intent_ids) -> {intent_id: IntentUse} for the intents a charge session pays with. One query.
IntentUseSource = Callable[[list[str]], dict[str, IntentUse]]
_intent_use_sources: list[IntentUseSource] = []
# SQL expressions over the intent's row (its table by name) giving the id of the session paying with it or NULL:
# a single intent is read with its `charge_session_id` in one statement (`payment_intents_with_session_id`).
_intent_session_id_columns: list[str] = []
#: The attribute `payment_intents_with_session_id` puts on each intent it reads.
KNOWN_SESSION_ID = "known_charge_session_id"


def intent_use_source_register(source: IntentUseSource, *, session_id_column: str | None = None) -> None:
    if source not in _intent_use_sources:
        _intent_use_sources.append(source)
        if session_id_column is not None:
            _intent_session_id_columns.append(session_id_column)


def payment_intents_with_session_id(queryset: QuerySet[PaymentIntent]) -> QuerySet[PaymentIntent]:
    """`queryset` with KNOWN_SESSION_ID on each intent, read in the same statement, where every registered source
    gave a column for it; else `queryset` unchanged (the representation then asks `intent_uses`)."""
    if not _intent_use_sources or len(_intent_session_id_columns) != len(_intent_use_sources):
        return queryset
    columns = _intent_session_id_columns
    # COALESCE of one argument is an error in SQLite.
    column = columns[0] if len(columns) == 1 else f"COALESCE({', '.join(columns)})"
    return queryset.extra(select={KNOWN_SESSION_ID: column})


def intent_uses(*, intent_ids: Iterable[str]) -> dict[str, IntentUse]:
    intent_ids = list(dict.fromkeys(intent_ids))
    found: dict[str, IntentUse] = {}
    if not intent_ids:
        return found
    for source in _intent_use_sources:
        found.update(source(intent_ids))
    return found


def payment_intents_due_for_expiry(*, limit: int = 500) -> list[PaymentIntent]:
    return list(
        PaymentIntent.objects.filter(
            status=PaymentIntentStatus.AUTHORIZED, capture_before__lte=timezone.now()
        ).order_by("capture_before")[:limit]
    )


def refunds_due_for_retry(*, stale_before: datetime, limit: int = 100) -> list[Refund]:
    return list(
        Refund.objects.filter(status=RefundStatus.PENDING, attempted_at__lt=stale_before)
        .select_related("payment_intent")
        .order_by("attempted_at")[:limit]
    )


def stripe_secret_key(*, operator_id: str | None) -> str:
    """The operator's own Stripe secret key when it set one, else STRIPE_SECRET_KEY."""
    own = StripeAccount.objects.filter(operator_id=operator_id).values_list("secret_key", flat=True).first()
    return own or settings.STRIPE_SECRET_KEY


def dashboard_panels(*, operator_id: str | None, since: datetime) -> list[Any]:
    """Captured volume and intents by status since `since` (today)."""
    from django.db.models import Count, Sum

    from evpay.core.money import to_major_units
    from evpay.core.panels import Panel

    intents = PaymentIntent.objects.all()
    if operator_id:
        intents = intents.filter(operator_id=operator_id)
    captured = (
        intents.filter(status=PaymentIntentStatus.CAPTURED, captured_at__gte=since)
        .values_list("currency")
        .annotate(total=Sum("amount_captured"), n=Count("id"))
        .order_by("currency")
    )
    by_status = intents.filter(created_at__gte=since).values_list("status").annotate(n=Count("id")).order_by("status")
    return [
        Panel(
            "Captured today",
            [(currency, f"{to_major_units(total, currency)} {currency} ({n})") for currency, total, n in captured],
        ),
        Panel("Payment intents created today", list(by_status)),
    ]
