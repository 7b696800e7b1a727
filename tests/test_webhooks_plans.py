"""The delivery engine's statements find their rows by key, whatever PostgreSQL's statistics say.

Most of the time nearly every delivery is succeeded when the table is analysed, so the planner believes that
few are pending. A backlog grows without a new ANALYZE; a statement that looks for pending deliveries through an
index of pending ones then reads all of them, for every claim and every record. These tests make that situation
(statistics taken with no delivery pending, then a backlog) and read the plans' row counts."""

import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from webhooks.services import event_emit
from webhooks.signing import secret_generate

pytestmark = pytest.mark.django_db

ANALYSED = 2000  # deliveries, all succeeded when the statistics are taken
BACKLOG = 500


def _rows_read_beyond_the_match(plan: dict) -> int:
    """Rows of webhook deliveries an index scan read and then dropped (a filter, or a key of several rows)."""
    total = 0
    if plan.get("Relation Name") == WebhookDelivery._meta.db_table and "Index" in plan.get("Node Type", ""):
        total += plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        total += _rows_read_beyond_the_match(child)
    return total


def _explained(sql: str, params: dict) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        (value,) = cursor.fetchone()
        (plan,) = json.loads(value) if isinstance(value, str) else value
        transaction.set_rollback(True)
    return _rows_read_beyond_the_match(plan["Plan"])


@pytest.fixture
def backlog_unknown_to_the_statistics(operator):
    subscription = WebhookSubscription.objects.create(
        operator=operator, url="https://example.com/hook", event_types=["*"], secret=secret_generate()
    )
    with transaction.atomic():
        for i in range(ANALYSED):
            event_emit(operator=operator, type="payment_intent.captured", data_object={"id": f"pi_{i}"})
    WebhookDelivery.objects.update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, enqueued_at=None)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {WebhookDelivery._meta.db_table}")
    with transaction.atomic():
        for i in range(BACKLOG):
            event_emit(operator=operator, type="payment_intent.captured", data_object={"id": f"pi_b{i}"})
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    assert pending.count() == BACKLOG
    return subscription, pending.order_by("created_at").first()


def _params(delivery_id: str) -> dict:
    now = timezone.now()
    return {
        "id": delivery_id,
        "now": now,
        "lease_end": now + services._claim_lease(),
        "lease_start": now - services._claim_lease(),
        "max_in_flight": 2,
        "pending": DeliveryStatus.PENDING,
        "succeeded": DeliveryStatus.SUCCEEDED,
        "at": now,
        "status": 200,
        "duration_ms": 5,
        "body": "ok",
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
@pytest.mark.parametrize("statement", ["_CLAIM", "_RECORD_SUCCESS"])
def test_claim_and_record_read_one_delivery_with_a_backlog_the_statistics_do_not_know(
    backlog_unknown_to_the_statistics, statement
):
    _, delivery = backlog_unknown_to_the_statistics
    params = _params(delivery.pk)
    read = [_explained(sql, params) for sql in getattr(services, statement).split(";\n") if sql.strip()]
    # The delivery by its key; the slot handoff's search by whd_waiting, oldest due first (where it may pass over
    # the delivery itself). The plans these replace read the whole backlog (BACKLOG rows) in each.
    assert all(rows <= 1 for rows in read), read
