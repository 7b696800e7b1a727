"""Charging figures for Prometheus (see evpay/metrics.py): session starts, failures and completions counted
where they happen (by reason), running and stuck sessions read from the database at scrape time."""

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from .selectors import session_counts_by_running_status, session_counts_overdue

STARTED = Counter("evpay_charge_sessions_started", "Charge sessions that started charging (pending -> charging).")
FAILED = Counter(
    "evpay_charge_sessions_failed", "Charge sessions that failed to start, by reason (stop_reason).", ["reason"]
)
COMPLETED = Counter("evpay_charge_sessions_completed", "Completed charge sessions, by stop_reason.", ["reason"])


def session_event_recorded(*, event: str, stop_reason: str | None) -> None:
    """Called by charging/events.py with each session event written (the last step of its transaction)."""
    if event == "charge.started":
        STARTED.inc()
    elif event == "charge.failed":
        FAILED.labels(stop_reason or "unknown").inc()
    elif event == "charge.completed":
        COMPLETED.labels(stop_reason or "unknown").inc()


def collect():
    active = GaugeMetricFamily(
        "evpay_charge_sessions_active",
        "Charge sessions running now (pending, charging, stopping), by status",
        labels=["status"],
    )
    for status, count in session_counts_by_running_status().items():
        active.add_metric([status], count)
    yield active

    overdue = GaugeMetricFamily(
        "evpay_charge_sessions_overdue",
        "Running charge sessions more than 5 minutes past the timeout that should have ended them, by status",
        labels=["status"],
    )
    for status, count in session_counts_overdue().items():
        overdue.add_metric([status], count)
    yield overdue
