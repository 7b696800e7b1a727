"""Prometheus figures of the infrastructure app (see evpay/metrics.py).

- Adapter call totals, circuits and connector statuses are read from the database at scrape time; the calls
  are counted in the database by whichever process makes them (web, worker, beat), so they survive restarts.
- Adapter call latency is a histogram counted where the call happens (multiprocess mode), so percentiles can
  be computed across processes and pods: `CALL_SECONDS` in adapters/guard.py, next to the per-call record.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .selectors import adapter_call_totals, adapter_circuit_counts, connector_counts_by_status

_CALL_LABELS = ["adapter_type", "operation", "outcome"]


def collect():
    connectors = GaugeMetricFamily("evpay_connectors", "Mapped connectors by OCPI status", labels=["status"])
    for status, count in connector_counts_by_status().items():
        connectors.add_metric([status], count)
    yield connectors

    calls = CounterMetricFamily("evpay_cpms_adapter_calls", "CPMS adapter calls by outcome", labels=_CALL_LABELS)
    for row in adapter_call_totals():
        labels = [row["adapter_type"], row["operation"], row["outcome"]]
        calls.add_metric(labels, row["count"])
    yield calls

    circuits = GaugeMetricFamily(
        "evpay_cpms_adapter_circuits", "Adapter configurations by circuit state", labels=["adapter_type", "circuit"]
    )
    for (adapter_type, circuit), count in adapter_circuit_counts().items():
        circuits.add_metric([adapter_type, circuit], count)
    yield circuits
