"""Prometheus at /metrics.

Two kinds of figures, chosen so that the numbers are right whatever the number of processes:
- Counters and histograms of things that happen (processor calls, webhook deliveries, CPMS adapter calls,
  Celery tasks, requests and queries) are counted in the process where they happen, gunicorn worker or
  Celery worker, with prometheus_client's multiprocess mode: every process writes to files in
  PROMETHEUS_MULTIPROC_DIR (named per host and pid: evpay/prometheus.py) and the scrape merges them.
- Gauges of state (payment intents by status, terminals by status, backlog, active sessions, queue lengths,
  readiness...) are computed at scrape time by `BusinessCollector`, so every web process answers the same.
Without PROMETHEUS_MULTIPROC_DIR (a single process) the default registry is used as is.
The README's metrics table lists every family; tests/test_ops_metrics.py checks that the dashboard and the
alert rules (ops/) name only families exported here.
"""

import logging
import os
from collections.abc import Callable, Iterable

import prometheus_client
from django.conf import settings
from django.http import HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import Counter, multiprocess
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
    "evpay.metrics.readiness_collect",
    "evpay.metrics.celery_queues_collect",
]

CELERY_TASKS = Counter(
    "evpay_celery_tasks",
    "Celery tasks run, by queue, task name and outcome (succeeded, failed, retried).",
    ["queue", "task", "outcome"],
)


def celery_task_finished(*, task, outcome: str) -> None:
    """Called from the Celery signals (evpay/celery.py) in the worker process that ran the task."""
    delivery = getattr(task.request, "delivery_info", None) or {}
    queue = delivery.get("routing_key") or "direct"  # `direct`: run in-process (apply), not from a queue
    CELERY_TASKS.labels(queue, task.name, outcome).inc()


def readiness_collect():
    """The checks of /health/ready as gauges (1 passes), for the alert EvpayNotReady."""
    from evpay.health import READY_CHECKS, run_checks

    family = GaugeMetricFamily(
        "evpay_readiness_check_up", "1 when the readiness check passes (database, migrations, broker)", labels=["check"]
    )
    for name, result in run_checks(READY_CHECKS).items():
        family.add_metric([name], 1 if result["status"] == "ok" else 0)
    yield family


def celery_queues_collect():
    """Messages waiting per Celery queue, asked of the broker. Absent when the broker cannot say (it is down:
    readiness says so; or a broker without queue sizes, the filesystem one of `make run`)."""
    from evpay.celery import app

    family = GaugeMetricFamily("evpay_celery_queue_length", "Messages waiting in each Celery queue", labels=["queue"])
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for queue in settings.CELERY_TASK_QUEUES:
                try:
                    count = channel.queue_declare(queue=queue, passive=True).message_count
                except conn.channel_errors:  # never used yet: Redis keeps no empty list, so the queue is "absent"
                    count, channel = 0, conn.channel()
                family.add_metric([queue], count)
    except Exception as exc:  # a scrape never fails for this
        logger.debug("celery queue lengths unavailable: %s", exc)
        return
    yield family


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
