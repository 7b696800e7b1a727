"""The connection health check (evpay/core/backends/postgresql): a persistent connection idle for
DATABASE_HEALTH_CHECK_INTERVAL is checked before its next use and replaced if dead; one used more recently is
trusted, and if it died meanwhile, that request answers 503 and the next one gets a new connection."""

import psycopg
import pytest
from django.db import close_old_connections, connection

from payments.models import PaymentIntent


@pytest.fixture
def checked_connection(monkeypatch):
    """The test's connection with CONN_HEALTH_CHECKS on, as in production; the checks it sends, counted."""
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()
    connection.ensure_connection()
    checks = []
    is_usable = connection.is_usable

    def counted():
        checks.append(1)
        return is_usable()

    monkeypatch.setattr(connection, "is_usable", counted)
    yield checks
    connection.close()


def request_boundary():
    """What Django does when a request starts (and ends): the connection is marked unchecked, or closed."""
    close_old_connections()


def kill_the_connection():
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=params["dbname"],
        user=params.get("user"),
        host=params.get("host"),
        port=params.get("port"),
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid


def intents_count(client):
    return client.get("/v1/payment-intents?limit=1")


@pytest.mark.django_db(transaction=True)
class TestHealthCheck:
    def test_a_connection_used_within_the_interval_is_not_checked(self, checked_connection, settings, client):
        settings.DATABASE_HEALTH_CHECK_INTERVAL = 60
        for _ in range(3):
            request_boundary()
            assert intents_count(client).status_code == 200
        assert checked_connection == []

    def test_an_idle_connection_is_checked_once_per_request(self, checked_connection, settings, client):
        settings.DATABASE_HEALTH_CHECK_INTERVAL = 0
        for _ in range(3):
            request_boundary()
            assert intents_count(client).status_code == 200
        assert len(checked_connection) == 3

    def test_an_idle_connection_that_died_is_replaced_before_the_request_uses_it(
        self, checked_connection, settings, client
    ):
        settings.DATABASE_HEALTH_CHECK_INTERVAL = 0
        first_pid = connection.connection.info.backend_pid
        kill_the_connection()
        request_boundary()
        response = client.post("/v1/payment-intents", {"amount": 500, "currency": "EUR"}, format="json")
        assert response.status_code == 201, response.content
        assert connection.connection.info.backend_pid != first_pid
        assert PaymentIntent.objects.filter(pk=response.json()["id"]).exists()

    def test_a_trusted_connection_that_died_costs_one_503_then_is_replaced(self, checked_connection, settings, client):
        settings.DATABASE_HEALTH_CHECK_INTERVAL = 60
        dead_pid = kill_the_connection()
        request_boundary()
        refused = client.post("/v1/payment-intents", {"amount": 500, "currency": "EUR"}, format="json")
        assert refused.status_code == 503 and refused.json()["code"] == "service_unavailable"
        assert checked_connection == []  # trusted: no check before it
        request_boundary()  # the request's end: a connection that had errors is checked, a dead one closed
        request_boundary()
        response = client.post("/v1/payment-intents", {"amount": 501, "currency": "EUR"}, format="json")
        assert response.status_code == 201, response.content
        assert connection.connection.info.backend_pid != dead_pid
        assert PaymentIntent.objects.filter(amount=501).count() == 1 and PaymentIntent.objects.count() == 1
