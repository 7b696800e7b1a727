"""Terminal figures for Prometheus, read from the database at scrape time (see evpay/metrics.py)."""

from prometheus_client.core import GaugeMetricFamily

from .selectors import terminal_counts_by_status


def collect():
    terminals = GaugeMetricFamily("evpay_terminals", "Terminals by status", labels=["status"])
    for status, count in terminal_counts_by_status().items():
        terminals.add_metric([status], count)
    yield terminals
