"""Webhook figures for Prometheus (see evpay/metrics.py): attempt outcomes and durations are counted where
attempts happen (Celery workers, merged by multiprocess mode); the backlog is read from the database at
scrape time."""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .selectors import delivery_backlog, delivery_backlog_by_state

DELIVERIES = Counter(
    "evpay_webhook_deliveries",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "evpay_webhook_delivery_seconds",
    "Duration of one webhook delivery attempt (request to receiver), by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_attempt(*, outcome: str, seconds: float) -> None:
    DELIVERIES.labels(outcome=outcome).inc()
    DELIVERY_SECONDS.labels(outcome=outcome).observe(seconds)


def collect():
    backlog = delivery_backlog()
    yield GaugeMetricFamily("evpay_webhook_backlog", "Pending webhook deliveries", value=backlog["pending"])
    yield GaugeMetricFamily(
        "evpay_webhook_backlog_oldest_age_seconds",
        "Age of the oldest pending webhook delivery",
        value=backlog["oldest_pending_age_s"],
    )
    yield GaugeMetricFamily(
        "evpay_webhook_backlog_overdue",
        "Pending webhook deliveries due for more than 5 minutes and not attempted",
        value=backlog["overdue"],
    )
    by_state = delivery_backlog_by_state()
    states = GaugeMetricFamily(
        "evpay_webhook_backlog_by_state",
        "Pending webhook deliveries: new (never attempted) or retrying (a failed attempt, waiting for the next)",
        labels=["state"],
    )
    for state in ("new", "retrying"):
        states.add_metric([state], by_state[state])
    yield states
    yield GaugeMetricFamily(
        "evpay_webhook_backlog_oldest_due_age_seconds",
        "How long the oldest due webhook delivery has waited past its due time",
        value=by_state["oldest_due_age_s"],
    )
