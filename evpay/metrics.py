"""Prometheus at /metrics.

Two kinds of figures, chosen so that the numbers are right whatever the number of processes:
- Counters and histograms of things that happen (webhook deliveries, CPMS adapter calls) are counted in
  the process where they happen, gunicorn worker or Celery worker, with prometheus_client's multiprocess
  mode: every process writes to files in PROMETHEUS_MULTIPROC_DIR and the scrape merges them.
- Gauges of state (payment intents by status, terminals by status, backlog, active sessions...) are
  computed from the database at scrape time by `BusinessCollector`, so every web process answers the same.
Without PROMETHEUS_MULTIPROC_DIR (a single process) the default registry is used as is.
"""

import logging
import os
from collections.abc import Callable, Iterable

import prometheus_client
from django.http import HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Each app contributes a function returning metric families computed from the database.
BUSINESS_METRIC_SOURCES: list[str] = [
    "payments.metrics.collect",
    "infrastructure.metrics.collect",
    "webhooks.metrics.collect",
    "terminals.metrics.collect",
    "charging.metrics.collect",
]


class BusinessCollector(Collector):
    def __init__(self, sources: Iterable[str] = BUSINESS_METRIC_SOURCES):
        self.sources = list(sources)

    def collect(self):
        healthy = 1
        for path in self.sources:
            try:
                source: Callable = import_string(path)
                yield from source()
            except Exception:  # one failing source must not take the whole scrape down
                healthy = 0
                logger.exception("metrics source %s failed", path)
        yield GaugeMetricFamily(
            "evpay_business_metrics_up", "1 when every business metric source answered", value=healthy
        )


def registry_for_scrape() -> prometheus_client.CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    return registry


_business_collector = BusinessCollector()


def serve_process_metrics(port: int) -> None:
    """Serve the counters of this process and its siblings (multiprocess mode) on http://0.0.0.0:port/metrics,
    without the database figures, which web serves. A Celery worker does this where it shares no metrics
    directory with web (Kubernetes: CELERY_WORKER_METRICS_PORT)."""
    prometheus_client.start_http_server(port, registry=registry_for_scrape())


def metrics_view(request):
    registry = registry_for_scrape()
    output = prometheus_client.generate_latest(registry)
    business = prometheus_client.CollectorRegistry()
    business.register(_business_collector)
    output += prometheus_client.generate_latest(business)
    return HttpResponse(output, content_type=prometheus_client.CONTENT_TYPE_LATEST)
