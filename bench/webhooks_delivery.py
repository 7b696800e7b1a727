#!/usr/bin/env python
"""Webhook delivery benchmark: one Celery worker (prefork, 2 processes) delivering to a local receiver.

Measures
  1. throughput: N events committed in batches while no worker runs, then one worker drains the queue:
     deliveries per second from the first to the last request at the receiver;
  2. latency: events committed one at a time at a steady rate below capacity, time from commit to the
     first request at the receiver (p50/p99).

Run from the project root (PostgreSQL and Redis on localhost):
  python bench/webhooks_delivery.py [--events 3000] [--latency-events 300] [--rate 20]
It uses its own database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/evpay_bench_webhooks)
and CELERY_BROKER_URL (default redis://127.0.0.1:6379/12)."""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "evpay.settings.local"
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evpay_bench_webhooks"
)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.update(
    WEBHOOK_ALLOW_HTTP="1",
    WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
    DEBUG="0",
    LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
)


def ensure_database(url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_worker(*, purge: bool = True) -> subprocess.Popen:
    from evpay.celery import app

    if purge:
        app.control.purge()
    log_level = os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING")
    (ROOT / "var").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evpay",
            "worker",
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "--loglevel",
            log_level,
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"bench-{os.getpid()}@%h",
            *os.environ.get("BENCH_WORKER_ARGS", "").split(),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=open(ROOT / "var" / "bench-worker.log", "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return proc
    proc.kill()
    raise SystemExit("worker did not start")


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events for the throughput run")
    parser.add_argument("--batch", type=int, default=100, help="events per transaction in the throughput run")
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20, help="events per second in the latency run")
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from evpay.core.services import operator_create
    from tests.webhook_receiver import Receiver
    from webhooks.models import WebhookDelivery
    from webhooks.services import event_emit, webhook_subscription_create

    call_command("migrate", verbosity=0)
    receiver = Receiver()
    receiver.thread.start()
    operator = operator_create(name=f"Bench {time.time():.0f}")
    webhook_subscription_create(operator=operator, url=receiver.url, event_types=["*"])

    def emit(n: int, tag: str) -> str:
        return event_emit(
            operator=operator,
            type="payment_intent.captured",
            data_object={"id": f"pi_{tag}_{n}", "object": "payment_intent", "amount": 5000},
        ).id

    # 1. Throughput: the events and their task messages are committed first, then one worker drains the queue,
    #    so the figure is the worker's and not the producer's.
    from evpay.celery import app

    app.control.purge()
    started = time.time()
    for start in range(0, args.events, args.batch):
        with transaction.atomic():
            for i in range(start, min(start + args.batch, args.events)):
                emit(i, "tp")
    committed = time.time()
    worker = start_worker(purge=False)
    try:
        wait_until(lambda: receiver.count() >= args.events, 900)
        arrivals = sorted(r.at for r in receiver.received)
        drain_seconds = arrivals[-1] - arrivals[0]
        throughput = (args.events - 1) / drain_seconds
        wait_until(
            lambda: not WebhookDelivery.objects.filter(operator=operator).exclude(status="succeeded").exists(), 120
        )

        # 2. Commit-to-first-attempt latency, one event per transaction at a steady rate below capacity.
        commit_times: dict[str, float] = {}
        interval = 1 / args.rate
        for i in range(args.latency_events):
            tick = time.time()
            with transaction.atomic():
                event_id = emit(i, "lat")
            commit_times[event_id] = time.time()
            time.sleep(max(0.0, interval - (time.time() - tick)))
        wait_until(
            lambda: (
                sum(1 for r in list(receiver.received) if r.headers["webhook-id"] in commit_times)
                >= args.latency_events
            ),
            120,
        )
        first_arrival: dict[str, float] = {}
        for r in list(receiver.received):
            first_arrival.setdefault(r.headers["webhook-id"], r.at)
        latencies = [(first_arrival[e] - t) * 1000 for e, t in commit_times.items()]
    finally:
        worker.terminate()
        worker.wait(20)
        receiver.server.shutdown()

    print(
        f"producer: {args.events} events (+ deliveries) committed in batches of {args.batch} in "
        f"{committed - started:.2f} s -> {args.events / (committed - started):.0f} events/s"
    )
    print(
        f"throughput: one worker (prefork, 2 processes) delivered {args.events} in {drain_seconds:.2f} s "
        f"-> {throughput:.0f} deliveries/s"
    )
    print(
        f"latency (commit -> first request at receiver), {args.latency_events} events at {args.rate:g}/s: "
        f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
