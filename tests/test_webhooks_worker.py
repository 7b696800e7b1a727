"""Delivery through a real Celery worker (prefork) to a real receiver on 127.0.0.1."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from payments.services import payment_intent_create
from tests.conftest import wait_for
from tests.webhook_receiver import Reply
from webhooks import services
from webhooks.models import Event, WebhookDelivery
from webhooks.services import event_emit, webhook_deliveries_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]
PI = "/v1/payment-intents"
VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}


def subscribe(client, receiver, event_types=("*",)):
    response = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": list(event_types)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_payment_lifecycle_is_delivered_signed(client, receiver):
    subscription = subscribe(
        client,
        receiver,
        [
            "payment_intent.created",
            "payment_intent.authorized",
            "payment_intent.captured",
            "payment_intent.voided",
            "payment_intent.authorization_failed",
        ],
    )
    captured = client.post(PI, {"amount": 5000, "currency": "EUR"}, format="json").json()
    assert client.post(f"{PI}/{captured['id']}/authorize", VISA, format="json").status_code == 200
    assert client.post(f"{PI}/{captured['id']}/capture", {"amount_to_capture": 4000}, format="json").status_code == 200
    voided = client.post(PI, {"amount": 700, "currency": "EUR"}, format="json").json()
    declined = {"payment_method": {"type": "card_present", "token": "tok_chargeDeclined"}}
    assert client.post(f"{PI}/{voided['id']}/authorize", declined, format="json").status_code == 402
    assert client.post(f"{PI}/{voided['id']}/void", {}, format="json").status_code == 200

    wait_for(lambda: receiver.count() >= 6, message="six deliveries")
    verifier = Webhook(subscription["secret"])
    received = [(verifier.verify(r.body, r.headers), r.headers) for r in receiver.received]
    for body, headers in received:
        assert headers["webhook-id"] == body["id"]
    by_object = {}
    for body, _ in received:
        by_object.setdefault(body["data"]["object"]["id"], set()).add(body["type"])
    assert by_object == {
        captured["id"]: {"payment_intent.created", "payment_intent.authorized", "payment_intent.captured"},
        voided["id"]: {"payment_intent.created", "payment_intent.authorization_failed", "payment_intent.voided"},
    }
    captured_body = next(b for b, _ in received if b["type"] == "payment_intent.captured")
    assert captured_body["data"]["object"]["amount_captured"] == 4000
    assert set(Event.objects.filter(type__startswith="payment_intent.").values_list("id", flat=True)) == {
        b["id"] for b, _ in received
    }
    wait_for(lambda: not WebhookDelivery.objects.exclude(status="succeeded").exists(), message="all succeeded")
    deliveries = client.get(f"/api/v1/webhooks/{subscription['id']}/deliveries").json()["results"]
    assert len(deliveries) == 6 and all(d["attempt_count"] == 1 for d in deliveries)
    assert deliveries[0]["attempts"][0]["response_status"] == 200


def test_500_then_200_is_retried_by_the_sweeper_with_the_same_id(client, receiver):
    subscription = subscribe(client, receiver)
    receiver.reply(Reply(500))
    intent = client.post(PI, {"amount": 100, "currency": "EUR"}, format="json").json()
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(attempt_count=1, status="pending").first(),
        message="first attempt failed",
    )
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 4 <= wait <= 6.5  # first step 5 s +-20 %
    # The retry was scheduled as a task for its due time; here that message is taken as lost and time moves on:
    # the retry is due, and the beat sweeper (run here) sends it to the worker.
    assert delivery.enqueued_at == delivery.next_attempt_at
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now(), enqueued_at=None)
    assert webhook_deliveries_sweep() == 1
    wait_for(lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="succeeded").exists(), message="retry")
    assert [a.response_status for a in WebhookDelivery.objects.get(pk=delivery.pk).attempts.all()] == [500, 200]
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event_id
    verifier = Webhook(subscription["secret"])
    assert verifier.verify(first.body, first.headers)["data"]["object"]["id"] == intent["id"]
    assert verifier.verify(second.body, second.headers) == verifier.verify(first.body, first.headers)


def test_lost_task_message_is_delivered_by_the_sweeper(client, receiver, operator, monkeypatch):
    subscribe(client, receiver)
    with monkeypatch.context() as patched, transaction.atomic():
        patched.setattr(services, "_enqueue", lambda *args, **kwargs: None)  # a crash between commit and publish
        intent = payment_intent_create(operator=operator, amount=100, currency="EUR")
    delivery = WebhookDelivery.objects.get(event__data__object__id=intent.pk)
    assert delivery.status == "pending"
    assert webhook_deliveries_sweep() == 0  # within WEBHOOK_REQUEUE_AFTER the message is presumed on its way
    assert receiver.count() == 0
    WebhookDelivery.objects.filter(pk=delivery.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert webhook_deliveries_sweep() == 1
    wait_for(lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="succeeded").exists(), message="sweep")
    assert receiver.count() == 1 and receiver.received[0].headers["webhook-id"] == delivery.event_id


def test_rolled_back_transaction_leaves_no_event_and_no_delivery(client, receiver, operator):
    subscribe(client, receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        payment_intent_create(operator=operator, amount=100, currency="EUR")
        with transaction.atomic():
            event_emit(operator=operator, type="charge.failed", data_object={"id": "chs_1"})
        raise RuntimeError("the change fails after its events were written")
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()
    # A later committed event does arrive, and it is the only thing that does.
    client.post(PI, {"amount": 100, "currency": "EUR"}, format="json")
    wait_for(lambda: receiver.count() >= 1, message="the committed event")
    assert webhook_deliveries_sweep() == 0
    assert receiver.count() == 1


def test_test_endpoint_delivers_through_the_worker(client, receiver):
    subscription = subscribe(client, receiver, ["charge.completed"])
    response = client.post(f"/api/v1/webhooks/{subscription['id']}/test", {}, format="json")
    assert response.status_code == 202
    wait_for(lambda: receiver.count() == 1, message="test event")
    body = Webhook(subscription["secret"]).verify(receiver.received[0].body, receiver.received[0].headers)
    assert body["type"] == "webhook.test" and body["data"]["object"]["id"] == subscription["id"]
    assert "secret" not in body["data"]["object"]
