"""event_emit on PostgreSQL writes the event, its payload and its deliveries in one statement: the same rows as the
ORM path (`_deliveries_create`, kept for SQLite), for the subscriptions that match and only those."""

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from webhooks import services
from webhooks.models import Event, WebhookDelivery, WebhookPayload
from webhooks.selectors import subscription_ids_matching
from webhooks.services import event_emit, webhook_subscription_create, webhook_subscription_deactivate

TYPE = "payment_intent.created"


def _subscribe(operator, event_types, url="http://127.0.0.1:9/hook"):
    return webhook_subscription_create(operator=operator, url=url, event_types=event_types, resolve_now=False)


def _rows(event) -> list[tuple]:
    return sorted(
        (d.subscription_id, d.operator_id, d.event_type, d.status, d.attempt_count, d.payload.body, d.last_error)
        for d in WebhookDelivery.objects.filter(event=event).select_related("payload")
    )


@pytest.mark.django_db
def test_one_statement_makes_the_rows_of_the_orm_path(operator, other_operator):
    exact = _subscribe(operator, [TYPE])
    everything = _subscribe(operator, ["*"])
    _subscribe(operator, ["refund.created", "payment_intent.captured"])  # another type only
    webhook_subscription_deactivate(subscription=_subscribe(operator, ["*"]))
    _subscribe(other_operator, ["*"])  # another operator's

    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        event = event_emit(operator=operator, type=TYPE, data_object={"id": "pi_1", "amount": 5})
    # One statement, deferred: it goes out with the transaction's next one, here the savepoint's RELEASE.
    messages = [q["sql"] for q in captured.captured_queries]
    assert len(messages) == 2 and messages[0].startswith("SAVEPOINT"), messages
    assert messages[1].lstrip().startswith("WITH event AS") and messages[1].count("INSERT INTO") == 3
    assert messages[1].rstrip().split(";")[-1].lstrip().startswith("RELEASE SAVEPOINT")

    with transaction.atomic():
        orm_event = Event.objects.create(operator=operator, type=TYPE, object_id="pi_1", data=event.data)
        services._deliveries_create(
            event=orm_event, subscription_ids=subscription_ids_matching(operator_id=operator.pk, event_type=TYPE)
        )

    sql_rows, orm_rows = _rows(event), _rows(orm_event)
    assert {row[0] for row in sql_rows} == {exact.pk, everything.pk}
    body = services._payload_body(Event.objects.get(pk=event.pk))
    assert WebhookPayload.objects.get(event=event).body == body
    # Same rows but for the event each belongs to (its id is in the body).
    assert [row[:5] for row in sql_rows] == [row[:5] for row in orm_rows]
    assert [row[6] for row in sql_rows] == [row[6] for row in orm_rows]
    for delivery in WebhookDelivery.objects.filter(event=event):
        assert re.fullmatch(r"whd_[0-9A-Za-z]{24}", delivery.pk)
        assert delivery.next_attempt_at is not None and delivery.enqueued_at is not None
        assert delivery.attempt_started_at is None and delivery.last_attempt_at is None


@pytest.mark.django_db
def test_no_subscription_no_payload_and_no_delivery(operator):
    _subscribe(operator, ["refund.created"])
    with transaction.atomic():
        event = event_emit(operator=operator, type=TYPE, data_object={"id": "pi_2"})
    assert Event.objects.filter(pk=event.pk, object_id="pi_2").exists()
    assert not WebhookPayload.objects.filter(event=event).exists()
    assert not WebhookDelivery.objects.filter(event=event).exists()


@pytest.mark.django_db(transaction=True)
def test_a_subscription_made_just_before_gets_the_next_event_and_its_task(operator, monkeypatch):
    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda ids, **kw: sent.extend(ids))
    with transaction.atomic():
        event_emit(operator=operator, type=TYPE, data_object={"id": "pi_3"})
    assert sent == []
    subscription = _subscribe(operator, [TYPE])
    with transaction.atomic():
        event = event_emit(operator=operator, type=TYPE, data_object={"id": "pi_4"})
        assert sent == []  # enqueued once committed
    assert sent == list(
        WebhookDelivery.objects.filter(event=event, subscription=subscription).values_list("pk", flat=True)
    )
