"""Charging figures for Prometheus, read from the database at scrape time (see evpay/metrics.py)."""

from prometheus_client.core import GaugeMetricFamily

from .selectors import session_counts_by_running_status


def collect():
    active = GaugeMetricFamily(
        "evpay_charge_sessions_active",
        "Charge sessions running now (pending, charging, stopping), by status",
        labels=["status"],
    )
    for status, count in session_counts_by_running_status().items():
        active.add_metric([status], count)
    yield active
