"""Events API (contract section 4): list with filters, get, redeliver; retention."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.base import EndpointAccessTests, assert_problem
from tests.conftest import wait_for
from webhooks.models import Event, WebhookDelivery, WebhookPayload, WebhookSubscription
from webhooks.services import event_emit, events_prune
from webhooks.signing import secret_generate

URL = "/v1/events"
PI = "/v1/payment-intents"
VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}
PUBLIC_URL = "https://93.184.216.34/hooks"


def emit(operator, type_="payment_intent.captured", object_id="pi_test", created_at=None):
    with transaction.atomic():
        event = event_emit(operator=operator, type=type_, data_object={"id": object_id, "object": "x"})
    if created_at is not None:
        Event.objects.filter(pk=event.pk).update(created_at=created_at)
    return event


def subscription(operator, url=PUBLIC_URL, event_types=("*",), **fields):
    return WebhookSubscription.objects.create(
        operator=operator, url=url, event_types=list(event_types), secret=secret_generate(), **fields
    )


def ids(response):
    assert response.status_code == 200, response.content
    return [e["id"] for e in response.json()["results"]]


class TestEventAccess(EndpointAccessTests):
    scope_resource = "webhooks"
    endpoints = [
        ("GET", URL, None),
        ("GET", URL + "/{id}", None),
        ("POST", URL + "/{id}/redeliver", {}),
    ]

    def make_object(self, operator):
        return emit(operator)


@pytest.mark.django_db
class TestListAndGet:
    def test_events_of_the_api_are_listed_newest_first(self, client):
        intent = client.post(PI, {"amount": 5000, "currency": "EUR"}, format="json").json()
        client.post(f"{PI}/{intent['id']}/authorize", VISA, format="json")
        client.post(f"{PI}/{intent['id']}/capture", {}, format="json")
        results = client.get(URL).json()["results"]
        assert [e["type"] for e in results] == [
            "payment_intent.captured",
            "payment_intent.authorized",
            "payment_intent.created",
        ]
        captured = results[0]
        assert captured["id"].startswith("evt_") and captured["object"] == "event"
        assert captured["created_at"].endswith("Z")
        assert captured["data"]["object"]["id"] == intent["id"]
        assert captured["data"]["object"]["status"] == "captured"
        assert client.get(f"{URL}/{captured['id']}").json() == captured

    def test_another_operators_events_are_not_listed(self, client, operator, other_operator):
        mine = emit(operator)
        emit(other_operator)
        assert ids(client.get(URL)) == [mine.id]

    def test_type_filter_exact_and_prefix(self, client, operator):
        captured = emit(operator, "payment_intent.captured")
        created = emit(operator, "payment_intent.created")
        charge = emit(operator, "charge.completed", "chs_1")
        assert ids(client.get(URL, {"type": "payment_intent.captured"})) == [captured.id]
        assert ids(client.get(URL, {"type": "payment_intent.*"})) == [created.id, captured.id]
        assert ids(client.get(URL, {"type": "charge.*"})) == [charge.id]
        assert ids(client.get(URL, {"type": "*"})) == [charge.id, created.id, captured.id]
        assert ids(client.get(URL, {"type": "payment.*"})) == []  # a prefix is a whole segment plus `.`

    @pytest.mark.parametrize("bad", ["charge*", "*.completed", "Charge.completed", "charge..x", "x" * 65, "a b"])
    def test_a_malformed_type_is_400(self, client, bad):
        body = assert_problem(client.get(URL, {"type": bad}), 400, "validation_error")
        assert "type" in body["errors"]

    def test_object_id_filter(self, client, operator):
        first = emit(operator, object_id="pi_a")
        emit(operator, object_id="pi_b")
        second = emit(operator, "payment_intent.voided", object_id="pi_a")
        assert ids(client.get(URL, {"object_id": "pi_a"})) == [second.id, first.id]
        assert ids(client.get(URL, {"object_id": "pi_nope"})) == []

    def test_created_after_and_before(self, client, operator):
        now = timezone.now()
        old = emit(operator, created_at=now - timedelta(days=2))
        middle = emit(operator, created_at=now - timedelta(days=1))
        new = emit(operator)
        cut = (now - timedelta(hours=36)).isoformat()
        assert ids(client.get(URL, {"created_after": cut})) == [new.id, middle.id]
        assert ids(client.get(URL, {"created_before": cut})) == [old.id]
        assert_problem(client.get(URL, {"created_after": "yesterday"}), 400, "validation_error")

    def test_cursor_pagination_walks_every_event_once(self, client, operator):
        emitted = [emit(operator, object_id=f"pi_{i}").id for i in range(5)]
        seen, url = [], f"{URL}?limit=2"
        while url:
            page = client.get(url).json()
            assert len(page["results"]) <= 2
            seen += [e["id"] for e in page["results"]]
            url = page["next"]
        assert seen == emitted[::-1]
        assert_problem(client.get(URL, {"cursor": "forged"}), 400, "validation_error")

    def test_unknown_event_is_404(self, client):
        assert_problem(client.get(f"{URL}/evt_nope"), 404, "not_found")

    def test_data_is_exactly_what_a_delivery_sends(self, client, operator):
        subscription(operator)
        event = emit(operator, "terminal.status_changed", "trm_1")
        body = json.loads(WebhookPayload.objects.get(event=event).body)
        shown = client.get(f"{URL}/{event.id}").json()
        assert (shown["id"], shown["type"], shown["data"]) == (body["id"], body["type"], body["data"])

    def test_read_scope_lists_but_cannot_redeliver(self, make_client, operator):
        reader = make_client(operator, "webhooks:read")
        event = emit(operator)
        assert ids(reader.get(URL)) == [event.id]
        assert_problem(reader.post(f"{URL}/{event.id}/redeliver", {}, format="json"), 403, "insufficient_scope")


@pytest.mark.django_db
class TestRedeliver:
    def test_to_every_matching_active_subscription(self, client, operator):
        event = emit(operator, "payment_intent.captured")
        everything = subscription(operator)
        captures = subscription(operator, event_types=["payment_intent.captured"])
        subscription(operator, event_types=["charge.completed"])
        subscription(operator, is_active=False, disabled_reason="deactivated")
        response = client.post(f"{URL}/{event.id}/redeliver", {}, format="json")
        assert response.status_code == 202, response.content
        deliveries = response.json()["deliveries"]
        assert {d["subscription_id"] for d in deliveries} == {everything.id, captures.id}
        assert all(d["event_id"] == event.id and d["status"] == "pending" for d in deliveries)
        assert all(d["id"].startswith("whd_") and d["attempt_count"] == 0 for d in deliveries)
        assert WebhookDelivery.objects.filter(event=event).count() == 2

    def test_to_one_subscription_reuses_the_payload_sent_before(self, client, operator):
        target = subscription(operator)
        event = emit(operator)  # delivered once to `target` already
        payload = WebhookPayload.objects.get(event=event)
        response = client.post(f"{URL}/{event.id}/redeliver", {"subscription_id": target.id}, format="json")
        assert response.status_code == 202, response.content
        (delivery,) = response.json()["deliveries"]
        assert delivery["subscription_id"] == target.id
        new = WebhookDelivery.objects.get(pk=delivery["id"])
        assert new.payload_id == payload.pk
        assert WebhookDelivery.objects.filter(event=event).count() == 2

    def test_an_explicit_subscription_need_not_list_the_type(self, client, operator):
        other_types = subscription(operator, event_types=["charge.completed"])
        event = emit(operator)
        response = client.post(f"{URL}/{event.id}/redeliver", {"subscription_id": other_types.id}, format="json")
        assert response.status_code == 202
        assert [d["subscription_id"] for d in response.json()["deliveries"]] == [other_types.id]

    def test_an_event_without_subscribers_then_gets_a_payload(self, client, operator):
        event = emit(operator)
        assert not WebhookPayload.objects.filter(event=event).exists()
        subscription(operator)
        assert client.post(f"{URL}/{event.id}/redeliver", {}, format="json").status_code == 202
        body = json.loads(WebhookPayload.objects.get(event=event).body)
        assert body["id"] == event.id and body["data"] == event.data

    def test_none_matching_is_409(self, client, operator):
        subscription(operator, event_types=["charge.completed"])
        event = emit(operator)
        assert_problem(client.post(f"{URL}/{event.id}/redeliver", {}, format="json"), 409, "invalid_state")
        assert not WebhookDelivery.objects.filter(event=event).exists()

    def test_inactive_subscription_is_409(self, client, operator):
        inactive = subscription(operator, is_active=False, disabled_reason="too_many_failures")
        event = emit(operator)
        response = client.post(f"{URL}/{event.id}/redeliver", {"subscription_id": inactive.id}, format="json")
        assert "too_many_failures" in assert_problem(response, 409, "invalid_state")["detail"]

    def test_unknown_or_foreign_subscription_is_400(self, client, operator, other_operator):
        event = emit(operator)
        foreign = subscription(other_operator)
        for subscription_id in ("whs_nope", foreign.id, ""):
            response = client.post(f"{URL}/{event.id}/redeliver", {"subscription_id": subscription_id}, format="json")
            assert "subscription_id" in assert_problem(response, 400, "validation_error")["errors"]
        assert not WebhookDelivery.objects.filter(subscription=foreign).exists()

    def test_a_test_event_goes_back_only_where_it_was_sent(self, client, operator):
        tested = subscription(operator)
        subscription(operator)  # also "*", but never sent the test event
        delivery = client.post(f"/api/v1/webhooks/{tested.id}/test", {}, format="json").json()
        response = client.post(f"{URL}/{delivery['event_id']}/redeliver", {}, format="json")
        assert [d["subscription_id"] for d in response.json()["deliveries"]] == [tested.id]
        assert client.get(URL, {"object_id": tested.id}).json()["results"][0]["type"] == "webhook.test"

    def test_replayed_with_the_same_idempotency_key(self, client, operator):
        subscription(operator)
        event = emit(operator)
        first = client.post(f"{URL}/{event.id}/redeliver", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        again = client.post(f"{URL}/{event.id}/redeliver", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
        assert WebhookDelivery.objects.filter(event=event).count() == 2  # the original and one redelivery


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_redelivery_reaches_the_receiver_signed_with_the_same_webhook_id(client, receiver):
    created = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["*"]}, format="json").json()
    intent = client.post(PI, {"amount": 5000, "currency": "EUR"}, format="json").json()
    wait_for(lambda: receiver.count() >= 1, message="the original delivery")
    (event,) = client.get(URL, {"object_id": intent["id"]}).json()["results"]
    assert client.post(f"{URL}/{event['id']}/redeliver", {}, format="json").status_code == 202
    wait_for(lambda: receiver.count() >= 2, message="the redelivery")
    verifier = Webhook(created["secret"])
    original, again = receiver.received
    assert verifier.verify(again.body, again.headers) == verifier.verify(original.body, original.headers)
    assert again.headers["webhook-id"] == original.headers["webhook-id"] == event["id"]
    assert json.loads(again.body)["data"] == event["data"]


@pytest.mark.django_db
class TestRetention:
    def test_old_events_go_with_their_deliveries_recent_and_pending_stay(self, operator):
        old = timezone.now() - timedelta(days=31)
        sub = subscription(operator)
        finished = emit(operator, created_at=old)
        WebhookDelivery.objects.filter(event=finished).update(status="failed")
        pending = emit(operator, created_at=old)
        recent = emit(operator, created_at=timezone.now() - timedelta(days=29))
        without_deliveries = emit(operator, "charge.completed", created_at=old)
        WebhookDelivery.objects.filter(event=without_deliveries).delete()
        assert events_prune(batch=1) == 2
        assert set(Event.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}
        assert not WebhookPayload.objects.filter(event_id=finished.pk).exists()
        assert WebhookDelivery.objects.filter(subscription=sub).count() == 2

    @override_settings(EVENT_RETENTION_DAYS=2)
    def test_retention_follows_the_setting(self, operator):
        kept = emit(operator, created_at=timezone.now() - timedelta(days=1))
        emit(operator, created_at=timezone.now() - timedelta(days=3))
        assert events_prune() == 1
        assert list(Event.objects.values_list("pk", flat=True)) == [kept.pk]

    def test_the_job_is_in_the_beat_schedule(self):
        from evpay.beat import BEAT_SCHEDULE

        assert any(job["task"] == "webhooks.tasks.prune_events" for job in BEAT_SCHEDULE.values())
