#!/usr/bin/env python
"""CPU per request, in process: N requests through evpay's WSGI handler (production settings, no HTTP server,
no load generator), optionally under cProfile. CPU time hardly depends on what else the machine does, so this
is the quick, repeatable measure to use while changing a hot path; `bench/side_by_side.py` is the real one.

    BENCH_SKIP_HTTP=1 BENCH_SKIP_WEBHOOKS=1 BENCH_INTENTS=20000 .venv/bin/python bench/side_by_side.py  # seed once
    .venv/bin/python bench/profile_requests.py create             # user/sys CPU ms per request
    .venv/bin/python bench/profile_requests.py create --profile 40 --sort tottime
    .venv/bin/python bench/profile_requests.py ref_create         # the bare reference app, same way

Modes: create, get, authorize, capture, list, list_deep, health, progress (evpay, on the database that
side_by_side.py seeded: BENCH_EVPAY_DATABASE); ref_create, ref_get and ref_contract (the floor) for the
reference (bench/reference/ on BENCH_REFERENCE_DATABASE).
Each mode sends its requests to objects of its own (fresh intents, readings that only grow), as in the rounds.
"""

import argparse
import cProfile
import gc
import io
import os
import pstats
import secrets
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def wsgi_call(app, method: str, path: str, body: bytes = b"", headers: dict | None = None, query: str = "") -> str:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status = {}

    def start_response(line, response_headers, exc_info=None):
        status["line"] = line

    body = b"".join(app(environ, start_response))
    return status["line"] if status["line"].startswith("2") else f"{status['line']} {body[:300]!r}"


def reference_requests(mode: str):
    sys.path.insert(0, str(ROOT / "bench" / "reference"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="refapp.settings",
        REFERENCE_DATABASE=os.environ.get("BENCH_REFERENCE_DATABASE", "evpay_bench_reference"),
    )
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    app = WSGIHandler()
    if mode == "ref_create":
        return lambda: wsgi_call(app, "POST", "/items", b'{"amount":5000,"currency":"EUR"}')
    if mode == "ref_contract":  # the floor: the reference's create with evpay's create's round trips
        return lambda: wsgi_call(
            app,
            "POST",
            "/items/contract",
            b'{"amount":5000,"currency":"EUR"}',
            {"Idempotency-Key": uuid.uuid4().hex},
        )
    from refapp.models import Item

    item = Item.objects.order_by("pk").values_list("pk", flat=True).first()
    return lambda: wsgi_call(app, "GET", f"/items/{item}")


def evpay_requests(mode: str, count: int):
    sys.path.insert(0, str(ROOT))
    database = os.environ.get("BENCH_EVPAY_DATABASE", "evpay_bench_sidebyside")
    metrics = VAR / "profile-metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="evpay.settings.production",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CACHE_URL=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/12"),
        CELERY_BROKER_URL="memory://",  # delivery tasks are enqueued and never run
        API_RATE_LIMIT="100000000/min",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    import django

    django.setup()
    import logging

    from django.core.handlers.wsgi import WSGIHandler

    from evpay.core.models import ALL_SCOPES, Operator
    from evpay.core.services import api_key_create
    from payments.models import PaymentIntent

    logging.getLogger().handlers[0].stream = open(os.devnull, "w")  # noqa: SIM115 - the process's lifetime
    operator = Operator.objects.get(name="Bench side by side")
    _, key = api_key_create(operator=operator, scopes=ALL_SCOPES, name="profile")
    app = WSGIHandler()
    auth = {"X-API-Key": key}
    needed = 2 * count + 400
    if mode in ("authorize", "capture"):
        status = "requires_authorization" if mode == "authorize" else "authorized"
        ids = iter(
            # the seeded intents (pi_bench...), not those of the seeded charge sessions
            PaymentIntent.objects.filter(
                operator=operator, status=status, processing_action=None, pk__startswith="pi_bench"
            )
            .order_by("-pk")
            .values_list("pk", flat=True)[:needed]
        )
    terminals = (VAR / "bench-terminals.txt").read_text().split()
    sessions = (VAR / "bench-sessions.txt").read_text().split()
    counter = iter(range(1, 10**9))
    if mode == "list_deep":  # the page after 90 % of the seeded intents, as the API's own cursor names it
        deep = deep_cursor(PaymentIntent.objects.filter(pk__startswith="pi_bench").count() * 9 // 10)
    from django.db.models import Max

    from charging.models import ChargeSession

    base = (ChargeSession.objects.filter(pk__in=sessions).aggregate(top=Max("energy_wh"))["top"] or 0) + 1

    def post(path: str, body: bytes) -> str:
        return wsgi_call(app, "POST", path, body, {**auth, "Idempotency-Key": uuid.uuid4().hex})

    def one() -> str:
        n = next(counter)
        if mode == "create":
            return post("/v1/payment-intents", b'{"amount":5000,"currency":"EUR","description":"bench"}')
        if mode == "get":
            return wsgi_call(app, "GET", "/v1/payment-intents/pi_bench0000000000000000001", headers=auth)
        if mode == "list":
            return wsgi_call(app, "GET", "/v1/payment-intents", headers=auth)
        if mode == "list_deep":
            path, _, query = deep.partition("?")
            return wsgi_call(app, "GET", path, headers=auth, query=query)
        if mode == "authorize":
            body = b'{"payment_method":{"type":"card_present","token":"tok_visa"}}'
            return post(f"/v1/payment-intents/{next(ids)}/authorize", body)
        if mode == "capture":
            return post(f"/v1/payment-intents/{next(ids)}/capture", b"{}")
        if mode == "health":
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = f'{{"type":"heartbeat","occurred_at":"{at}","metrics":{{"signal_strength_dbm":-67}}}}'
            return post(f"/v1/terminals/{terminals[n % len(terminals)]}/health-events", body.encode())
        if mode == "progress":
            # one reading per session per round of sessions, each larger and later than the one before
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            body = f'{{"energy_wh":{base + n},"measured_at":"{at}.{n % 1_000_000:06d}Z","power_kw":"22.0"}}'
            path = f"/v1/adhoc-charges/{sessions[n % len(sessions)]}/progress"
            return wsgi_call(app, "PUT", path, body.encode(), auth)
        raise SystemExit(f"unknown mode {mode!r}")

    return one


def deep_cursor(position: int) -> str:
    """The `?cursor=` the API itself would hand out after `position` intents (newest first)."""
    from django.test import RequestFactory
    from rest_framework.pagination import Cursor
    from rest_framework.request import Request

    from evpay.api.pagination import CursorPagination
    from payments.models import PaymentIntent

    created = PaymentIntent.objects.values_list("created_at", flat=True).get(id=f"pi_bench{position:019d}")
    paginator = CursorPagination()
    paginator.base_url = "/v1/payment-intents"
    paginator.request = Request(RequestFactory().get("/v1/payment-intents"))
    url = paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(created)))
    return url[url.index("/v1/") :]


def package_of(filename: str) -> str:
    """The library (or project app) a profiled function belongs to; C functions count as `builtins`."""
    if filename == "~":
        return "builtins"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(ROOT):
        return "/".join(path.relative_to(ROOT).parts[:1]).removesuffix(".py")
    return "stdlib:" + path.stem


def print_packages(stats: pstats.Stats, requests: int) -> None:
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[package_of(filename)] = totals.get(package_of(filename), 0.0) + tottime
    whole = sum(totals.values())
    print(f"self CPU time by package, per request (of {1000 * whole / requests:.2f} ms under the profiler):")
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        if seconds / whole >= 0.005:
            print(f"  {name:32} {1000 * seconds / requests:6.3f} ms {100 * seconds / whole:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode")
    parser.add_argument("-n", "--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", type=int, metavar="TOP", help="also run N requests under cProfile; print TOP")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--callers", metavar="PATTERN", help="with --profile: who calls the functions matching it")
    parser.add_argument("--queries", action="store_true", help="print the statements of one more request")
    parser.add_argument("--packages", action="store_true", help="with --profile: CPU time by package (self time)")
    args = parser.parse_args()
    one = reference_requests(args.mode) if args.mode.startswith("ref_") else evpay_requests(args.mode, args.requests)
    gc.freeze()  # as gunicorn.conf.py's post_worker_init does once the application is loaded
    for _ in range(args.warmup):
        line = one()
        if not line.startswith("2"):
            raise SystemExit(f"{args.mode}: {line}")
    before, started = os.times(), time.perf_counter()
    for _ in range(args.requests):
        one()
    after, wall = os.times(), time.perf_counter() - started
    n = args.requests
    print(
        f"{args.mode}: user {1000 * (after.user - before.user) / n:.2f} ms, sys "
        f"{1000 * (after.system - before.system) / n:.2f} ms, wall {1000 * wall / n:.2f} ms per request (n={n})"
    )
    if args.queries:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            one()
        for query in captured.captured_queries:
            print(f"  {query['sql'][:150]}")
    if args.profile:
        # CPU time, not wall time: waits on PostgreSQL and Redis, and other processes' turns on a shared
        # machine, do not count.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.requests):
            one()
        profile.disable()
        stats = pstats.Stats(profile).sort_stats(args.sort)
        stats.print_stats(args.profile)
        if args.packages:
            print_packages(stats, args.requests)
        if args.callers:
            stats.print_callers(args.callers)


if __name__ == "__main__":
    main()
