"""Liveness, readiness: unauthenticated and cheap. Each readiness check has its own time limit."""

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from evpay.api.views import EvpayAPIView

CHECK_TIMEOUT_S = 2.0
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def _in_thread_with_db(fn):
    def run():
        try:
            return fn()
        finally:
            connections.close_all()  # the thread's own connection; never leak one per probe

    return run


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def check_migrations() -> dict:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migrations not applied")
    return {}


def check_broker() -> dict:
    from evpay.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)
    return {}


def _run(fn, uses_db: bool):
    fn = _timed(fn)
    return _executor.submit(_in_thread_with_db(fn) if uses_db else fn)


def run_checks(checks: dict[str, tuple], timeout: float = CHECK_TIMEOUT_S) -> dict[str, dict]:
    """Run checks concurrently, each in a worker thread with its own time limit: `{name: (fn, uses_db)}`.
    A check returns a dict of details (it may set its own "status") or raises; past the limit it is down."""
    started = time.monotonic()
    futures = {name: _run(fn, uses_db) for name, (fn, uses_db) in checks.items()}
    results = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.monotonic() - started))
        error = None
        try:
            details = dict(future.result(timeout=remaining) or {})
        except FutureTimeout:
            details, error = {"status": "down"}, f"timed out after {timeout:g}s"
        except Exception as exc:  # a check reports failure, it never raises
            details, error = {"status": "down"}, f"{type(exc).__name__}: {exc}"[:300]
        details.setdefault("status", "ok")
        # A check that answered timed itself in its thread; one that failed or timed out counts from the start.
        details.setdefault("latency_ms", round((time.monotonic() - started) * 1000, 1))
        if error:
            details["error"] = error
        results[name] = details
    return results


def _timed(fn):
    """The check's own duration (not its wait for a free thread), unless it reports its own latency_ms."""

    def run():
        started = time.monotonic()
        details = dict(fn() or {})
        details.setdefault("latency_ms", round((time.monotonic() - started) * 1000, 1))
        return details

    return run


READY_CHECKS = {
    "database": (check_database, True),
    "migrations": (check_migrations, True),
    "broker": (check_broker, False),
}


_health_response = inline_serializer("HealthStatus", {"status": serializers.CharField()})


class PublicHealthView(EvpayAPIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()


class HealthView(PublicHealthView):
    @extend_schema(responses={200: _health_response}, tags=["health"])
    def get(self, request):
        return Response({"status": "ok"})


class LiveView(HealthView):
    pass


class ReadyView(PublicHealthView):
    @extend_schema(
        responses={
            200: inline_serializer("Readiness", {"status": serializers.CharField(), "checks": serializers.DictField()}),
            503: inline_serializer("NotReady", {"status": serializers.CharField(), "checks": serializers.DictField()}),
        },
        tags=["health"],
    )
    def get(self, request):
        checks = run_checks(READY_CHECKS)
        ok = all(c["status"] == "ok" for c in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


# --- /health/detailed ---------------------------------------------------------------------------------
PROCESS_STARTED = time.monotonic()
# Components that make the whole service down when they are; any other failing component is "degraded".
CRITICAL_COMPONENTS = ("database", "broker", "migrations")
# Apps add their components here: name -> dotted path of a check `fn(*, operator_id)` returning a dict with its
# own "status"; it reports the caller's operator only.
DETAILED_COMPONENT_SOURCES: dict[str, str] = {
    "cpms_adapters": "infrastructure.selectors.adapters_health_component",
    "webhook_backlog": "webhooks.selectors.backlog_health_component",
    "terminals": "terminals.selectors.terminals_health_component",
}


def check_cache() -> dict:
    from django.core.cache import cache

    cache.set("evpay:health", "1", 5)
    if cache.get("evpay:health") != "1":
        raise RuntimeError("cache did not return what was written")
    return {}


def check_celery_workers() -> dict:
    from evpay.celery import app

    if app.conf.broker_url.startswith("filesystem"):
        return {"status": "unknown", "count": None, "detail": "the filesystem broker cannot broadcast a ping"}
    # A connection of its own, checked first: a dead broker fails here at once instead of leaving a
    # thread retrying through (and poisoning) the shared connection pool after the check gave up.
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
        replies = app.control.ping(timeout=1.0, connection=conn)
    return {"status": "ok" if replies else "down", "count": len(replies)}


def _detailed_checks(*, operator_id: str) -> dict[str, tuple]:
    """Platform components (database, broker, ...) plus the apps' components scoped to the caller's operator:
    an operator never sees another's terminals, circuits or backlog."""
    from django.utils.module_loading import import_string

    checks = {
        **READY_CHECKS,
        "cache": (check_cache, False),
        "celery_workers": (check_celery_workers, False),
    }
    for name, path in DETAILED_COMPONENT_SOURCES.items():
        checks[name] = (functools.partial(import_string(path), operator_id=operator_id), True)
    return checks


def overall_status(components: dict[str, dict]) -> str:
    if any(components[name]["status"] == "down" for name in CRITICAL_COMPONENTS if name in components):
        return "down"
    if any(c["status"] not in ("ok", "unknown") for c in components.values()):
        return "degraded"
    return "ok"


class DetailedHealthView(EvpayAPIView):
    """Authenticated: every component with its own time limit (2 s), run concurrently."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "DetailedHealth",
                {
                    "status": serializers.ChoiceField(choices=["ok", "degraded", "down"]),
                    "version": serializers.CharField(),
                    "uptime_s": serializers.IntegerField(),
                    "components": serializers.DictField(),
                },
            )
        },
        tags=["health"],
    )
    def get(self, request):
        from django.conf import settings

        components = run_checks(_detailed_checks(operator_id=request.user.operator.pk))
        return Response(
            {
                "status": overall_status(components),
                "version": settings.EVPAY_VERSION,
                "uptime_s": int(time.monotonic() - PROCESS_STARTED),
                "components": components,
            }
        )
