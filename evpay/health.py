"""Liveness, readiness: unauthenticated and cheap. Each readiness check has its own time limit."""

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


def run_check(fn, timeout: float = CHECK_TIMEOUT_S, uses_db: bool = False) -> dict:
    """Run one check in a worker thread; past `timeout` it counts as failed (the thread is abandoned)."""
    started = time.monotonic()
    future = _executor.submit(_in_thread_with_db(fn) if uses_db else fn)
    try:
        details = future.result(timeout=timeout) or {}
        status = "ok"
        error = None
    except FutureTimeout:
        details, status, error = {}, "down", f"timed out after {timeout:g}s"
    except Exception as exc:  # a check reports failure, it never raises
        details, status, error = {}, "down", f"{type(exc).__name__}: {exc}"[:300]
    result = {"status": status, "latency_ms": round((time.monotonic() - started) * 1000, 1), **details}
    if error:
        result["error"] = error
    return result


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
        responses={200: inline_serializer("Readiness", {"status": serializers.CharField(),
                                                        "checks": serializers.DictField()}),
                   503: inline_serializer("NotReady", {"status": serializers.CharField(),
                                                       "checks": serializers.DictField()})},
        tags=["health"],
    )
    def get(self, request):
        checks = {
            "database": run_check(check_database, uses_db=True),
            "migrations": run_check(check_migrations, uses_db=True),
            "broker": run_check(check_broker),
        }
        ok = all(c["status"] == "ok" for c in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
