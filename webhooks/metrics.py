"""Webhook figures for Prometheus (see evpay/metrics.py): attempt outcomes and durations are counted where
attempts happen (Celery workers, merged by multiprocess mode); the backlog is read from the database at
scrape time."""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .selectors import delivery_backlog

DELIVERIES = Counter(
    "evpay_webhook_deliveries",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "evpay_webhook_delivery_seconds",
    "Duration of one webhook delivery attempt (request to receiver).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_attempt(*, outcome: str, seconds: float) -> None:
    DELIVERIES.labels(outcome=outcome).inc()
    DELIVERY_SECONDS.observe(seconds)


def collect():
    backlog = delivery_backlog()
    yield GaugeMetricFamily("evpay_webhook_backlog", "Pending webhook deliveries", value=backlog["pending"])
    yield GaugeMetricFamily(
        "evpay_webhook_backlog_oldest_age_seconds",
        "Age of the oldest pending webhook delivery",
        value=backlog["oldest_pending_age_s"],
    )
