"""Prometheus figures of the infrastructure app, read from the database at scrape time (see evpay/metrics.py).

Adapter calls are counted in the database by whichever process makes them (web, worker, beat), so a call
made in a Celery worker shows in every web process's scrape."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from .selectors import adapter_call_totals, adapter_circuit_counts, connector_counts_by_status

_CALL_LABELS = ["adapter_type", "operation", "outcome"]


def collect():
    connectors = GaugeMetricFamily("evpay_connectors", "Mapped connectors by OCPI status", labels=["status"])
    for status, count in connector_counts_by_status().items():
        connectors.add_metric([status], count)
    yield connectors

    calls = CounterMetricFamily("evpay_cpms_adapter_calls", "CPMS adapter calls by outcome", labels=_CALL_LABELS)
    latency = SummaryMetricFamily(
        "evpay_cpms_adapter_call_duration_seconds", "Duration of CPMS adapter calls", labels=_CALL_LABELS
    )
    for row in adapter_call_totals():
        labels = [row["adapter_type"], row["operation"], row["outcome"]]
        calls.add_metric(labels, row["count"])
        latency.add_metric(labels, count_value=row["count"], sum_value=row["latency_ms_sum"] / 1000)
    yield calls
    yield latency

    circuits = GaugeMetricFamily(
        "evpay_cpms_adapter_circuits", "Adapter configurations by circuit state", labels=["adapter_type", "circuit"]
    )
    for (adapter_type, circuit), count in adapter_circuit_counts().items():
        circuits.add_metric([adapter_type, circuit], count)
    yield circuits
