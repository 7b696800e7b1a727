"""Delivery outcomes for Prometheus. Counted where attempts happen (Celery workers); how worker figures
reach /metrics (multiprocess mode) is the metrics app's concern."""

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "evpay_webhook_deliveries", "Webhook delivery attempts by outcome (succeeded, retrying, failed).", ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "evpay_webhook_delivery_seconds", "Duration of one webhook delivery attempt (request to receiver).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_attempt(*, outcome: str, seconds: float) -> None:
    DELIVERIES.labels(outcome=outcome).inc()
    DELIVERY_SECONDS.observe(seconds)
