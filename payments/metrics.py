"""Payment figures for Prometheus (see evpay/metrics.py).

Counted where they happen (web or worker process, merged by multiprocess mode):
- every processor call, by processor, operation and outcome, with its latency (payments.processors'
  `MeteredProcessor`, which `get_processor` wraps around every processor, so that a new operation or processor
  is counted without more code);
- authorizations by outcome and decline code;
- money movements (authorize, capture, void, expire, refund) as they are recorded: how many, how much, by currency.
Read from the database at scrape time (`collect`): payment intents by status, captured amount by currency.
Labels are bounded: processor names, operations, outcomes, decline codes, ISO currencies; never an id.
"""

import re

from django.db.models import Count, Sum
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import PaymentIntent, PaymentIntentStatus

PROCESSOR_CALLS = Counter(
    "evpay_payment_processor_calls",
    "Payment processor calls by outcome (succeeded, declined, invalid_payment_method, refused, unavailable, error).",
    ["processor", "operation", "outcome"],
)
PROCESSOR_CALL_SECONDS = Histogram(
    "evpay_payment_processor_call_duration_seconds",
    "Duration of payment processor calls.",
    ["processor", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
AUTHORIZATIONS = Counter(
    "evpay_payment_authorizations",
    "Card authorizations by outcome (approved, declined, invalid_payment_method, unavailable, error) and decline code.",
    ["processor", "outcome", "decline_code"],
)
OPERATIONS = Counter(
    "evpay_payment_operations",
    "Committed payment operations (authorize, capture, void, expire, refund) by currency.",
    ["operation", "currency"],
)
AMOUNTS = Counter(
    "evpay_payment_amount_minor_units",
    "Money moved by committed operations, in minor units: authorized, captured, released (void, expire), refunded.",
    ["operation", "currency"],
)

_DECLINE_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def processor_call_observed(*, processor: str, operation: str, outcome: str, decline_code: str, seconds: float) -> None:
    """One processor call (payments.processors.MeteredProcessor classifies it)."""
    PROCESSOR_CALL_SECONDS.labels(processor, operation).observe(seconds)
    PROCESSOR_CALLS.labels(processor, operation, outcome).inc()
    if operation == "authorize":
        # A processor's free text never becomes a label value.
        code = decline_code if not decline_code or _DECLINE_CODE.fullmatch(decline_code) else "other"
        AUTHORIZATIONS.labels(processor, "approved" if outcome == "succeeded" else outcome, code).inc()


def money_moved(*, operation: str, currency: str, amount: int) -> None:
    """Count a money movement. Called as the last step of the transaction that records it (after its event),
    so what is counted is what commits, barring a failing COMMIT itself."""
    OPERATIONS.labels(operation, currency).inc()
    AMOUNTS.labels(operation, currency).inc(amount)


def intent_transition_recorded(*, intent: PaymentIntent, action: str) -> None:
    """Called by the payment services with the intent as just saved by `action`."""
    if action == "authorize":
        amount = intent.amount_authorized
    elif action == "capture":
        amount = intent.amount_captured
    else:  # void, expire: what was held and is released
        amount = intent.amount_authorized - intent.amount_captured
    money_moved(operation=action, currency=intent.currency, amount=amount)


def collect():
    """Payment intents by status and captured volume by currency, from the database at scrape time."""
    by_status = GaugeMetricFamily("evpay_payment_intents", "Payment intents by status", labels=["status"])
    counts = dict(PaymentIntent.objects.values_list("status").annotate(n=Count("id")).order_by())
    for status in PaymentIntentStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status

    captured = CounterMetricFamily(
        "evpay_captured_amount_minor_units", "Captured amount in minor units, by currency", labels=["currency"]
    )
    rows = (
        PaymentIntent.objects.filter(status=PaymentIntentStatus.CAPTURED)
        .values_list("currency")
        .annotate(total=Sum("amount_captured"))
        .order_by()
    )
    for currency, total in rows:
        captured.add_metric([currency], total or 0)
    yield captured
