from django.db.models import Count, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import PaymentIntent, PaymentIntentStatus


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
