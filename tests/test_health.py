import pytest
from django.test import override_settings

from tests.base import assert_problem


@pytest.mark.django_db
def test_health_and_live(anon_client):
    assert anon_client.get("/health").json() == {"status": "ok"}
    assert anon_client.get("/health/live").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_ready_checks_database_migrations_broker(anon_client):
    response = anon_client.get("/health/ready")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert {k: v["status"] for k, v in body["checks"].items()} == {"database": "ok", "migrations": "ok", "broker": "ok"}


DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker_down(monkeypatch):
    """Point this process's Celery at a broker that refuses connections. Celery prefers the
    CELERY_BROKER_URL environment variable over its configuration, so both are changed."""
    from evpay.celery import app

    def drop_connection_pools():  # they hold connections to whichever broker they were made for
        app._pool = None
        app.amqp._producer_pool = None

    # The configuration first: its original value must be read before the environment changes it.
    monkeypatch.setattr(app.conf, "broker_url", DEAD_BROKER)
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD_BROKER)
    drop_connection_pools()
    with override_settings(CELERY_BROKER_URL=DEAD_BROKER):
        yield
    monkeypatch.undo()
    drop_connection_pools()


@pytest.mark.django_db(transaction=True)
def test_ready_is_503_when_the_broker_is_down(anon_client, broker_down):
    response = anon_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["latency_ms"] < 2500


@pytest.mark.django_db
def test_metrics_is_prometheus_text(anon_client):
    anon_client.get("/health")
    response = anon_client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    requests = 'django_http_requests_total_by_view_transport_method_total{method="GET",transport="http",view="health"}'
    assert requests in text
    assert 'django_http_responses_total_by_status_view_method_total{method="GET",status="200",view="health"}' in text
    assert 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="health"}' in text


@pytest.mark.django_db(transaction=True)
def test_detailed_needs_credentials(anon_client):
    assert_problem(anon_client.get("/health/detailed"), 401, "not_authenticated")


@pytest.mark.django_db(transaction=True)
def test_detailed_reports_components(client, celery_worker):
    body = client.get("/health/detailed").json()
    assert body["status"] == "ok", body
    assert body["version"] and body["uptime_s"] >= 0
    components = body["components"]
    assert set(components) == {
        "database",
        "broker",
        "cache",
        "celery_workers",
        "migrations",
        "webhook_backlog",
        "cpms_adapters",
        "terminals",
    }
    for name, component in components.items():
        assert component["status"] == "ok", (name, component)
    assert {"pending", "oldest_pending_age_s"} <= set(components["webhook_backlog"])
    assert components["broker"]["latency_ms"] >= 0
    assert components["database"]["latency_ms"] >= 0
    assert components["celery_workers"]["count"] >= 1


@pytest.mark.django_db(transaction=True)
def test_detailed_is_down_within_timeout_when_the_broker_stops(client, broker_down):
    import time

    started = time.monotonic()
    body = client.get("/health/detailed").json()
    ready = client.get("/health/ready")
    elapsed = time.monotonic() - started
    assert body["status"] == "down"
    assert body["components"]["broker"]["status"] == "down"
    assert body["components"]["database"]["status"] == "ok"
    assert ready.status_code == 503
    assert elapsed < 6


@pytest.mark.django_db(transaction=True)  # the checks run in threads with connections of their own
def test_detailed_terminals_degraded_when_the_offline_sweep_is_not_running(client, operator):
    from datetime import timedelta

    from django.utils import timezone

    from terminals.models import Terminal

    Terminal.objects.create(
        operator=operator, serial_number="T-1", status="online", last_seen_at=timezone.now() - timedelta(hours=1)
    )
    body = client.get("/health/detailed").json()
    assert body["components"]["terminals"]["status"] == "degraded"
    assert body["components"]["terminals"]["unswept"] == 1
    assert body["status"] in ("degraded", "down")
