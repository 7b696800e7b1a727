"""A Celery worker whose database connections were killed (a database restart) recovers after at most one
failed task per process, although it keeps connections across tasks (CELERY_DB_REUSE_MAX)."""

import pytest
from django.db import connection

from tests.conftest import wait_for
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _kill_other_connections():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_worker_reconnects_after_its_connections_are_killed(client, receiver):
    response = client.post(
        "/api/v1/webhooks", {"url": receiver.url, "event_types": ["payment_intent.created"]}, format="json"
    )
    assert response.status_code == 201
    # Warm up: both worker processes hold a database connection.
    for _ in range(4):
        client.post("/v1/payment-intents", {"amount": 100, "currency": "EUR"}, format="json")
    wait_for(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 4, message="warm-up deliveries")

    assert _kill_other_connections() >= 1
    for _ in range(8):
        client.post("/v1/payment-intents", {"amount": 100, "currency": "EUR"}, format="json")
    # At most one task per worker process (3 processes) meets the dead connection; the rest go through.
    wait_for(
        lambda: WebhookDelivery.objects.filter(status="succeeded").count() >= 4 + 5,
        timeout=30,
        message="deliveries after the connections were killed",
    )
