"""Fair webhook delivery: one subscription's slow, failing or timing-out endpoint holds at most
WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION worker processes, retries travel on their own queue, scheduled for their
due time, and another operator's deliveries go out meanwhile."""

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import wait_for
from tests.webhook_receiver import Receiver, Reply
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.services import event_emit, webhook_deliveries_sweep
from webhooks.signing import secret_generate


def subscribe(operator, url):
    return WebhookSubscription.objects.create(operator=operator, url=url, event_types=["*"], secret=secret_generate())


def emit_many(operator, n):
    with transaction.atomic():
        for i in range(n):
            event_emit(operator=operator, type="payment_intent.created", data_object={"id": f"pi_{i}"})


@pytest.fixture
def enqueued(monkeypatch):
    """Task messages the services send after commit, as (delivery id, queue, countdown), instead of the broker."""
    sent = []

    def record(ids, *, queue=services.FIRST_ATTEMPT_QUEUE, countdown=None):
        sent.extend((delivery_id, queue, countdown) for delivery_id in ids)

    monkeypatch.setattr(services, "_enqueue", record)
    return sent


@pytest.mark.django_db(transaction=True)  # messages are sent on commit
class TestInFlightLimit:
    def test_a_subscription_at_its_limit_gives_deliveries_back(self, operator, other_operator, enqueued, settings):
        settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 2
        slow = subscribe(operator, "http://127.0.0.1:9/slow")
        subscribe(other_operator, "http://127.0.0.1:9/fast")
        emit_many(operator, 4)
        emit_many(other_operator, 1)
        mine = list(WebhookDelivery.objects.filter(subscription=slow).order_by("created_at"))
        assert services._claim(mine[0].pk) and services._claim(mine[1].pk)
        assert services._claim(mine[2].pk) is None  # both slots taken
        given_back = WebhookDelivery.objects.get(pk=mine[2].pk)
        assert given_back.enqueued_at is None and given_back.attempt_count == 0 and given_back.status == "pending"
        other = WebhookDelivery.objects.exclude(subscription=slow).get()
        assert services._claim(other.pk) is not None  # another operator is not held back

    def test_an_ended_attempt_hands_its_slot_to_the_next_waiting_delivery(self, operator, receiver, enqueued, settings):
        settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 1
        subscription = subscribe(operator, receiver.url)
        emit_many(operator, 3)
        first, second, third = WebhookDelivery.objects.filter(subscription=subscription).order_by("created_at")
        assert services._claim(first.pk) is not None
        assert services._claim(second.pk) is None and services._claim(third.pk) is None
        enqueued.clear()
        services._record(delivery_id=first.pk, attempted_at=timezone.now(), result=_ok())
        assert [(d, q) for d, q, _ in enqueued] == [(second.pk, services.FIRST_ATTEMPT_QUEUE)]
        assert WebhookDelivery.objects.get(pk=second.pk).enqueued_at is not None
        assert WebhookDelivery.objects.get(pk=third.pk).enqueued_at is None

    def test_parallel_claims_take_no_more_than_the_free_slots(self, operator, enqueued, settings, parallel):
        """Six workers claim six due deliveries of one subscription at the same moment: two get through."""
        settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 2
        subscription = subscribe(operator, "http://127.0.0.1:9/slow")
        emit_many(operator, 6)
        ids = list(WebhookDelivery.objects.filter(subscription=subscription).values_list("pk", flat=True))
        results = parallel(lambda i: services._claim(ids[i]), 6)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert len([r for r in results if r is not None]) == 2
        assert WebhookDelivery.objects.filter(attempt_started_at__isnull=False).count() == 2
        assert WebhookDelivery.objects.filter(enqueued_at__isnull=True).count() == 6  # the others given back

    def test_the_sweeper_sends_no_more_than_the_free_slots(self, operator, other_operator, enqueued, settings):
        settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 2
        slow = subscribe(operator, "http://127.0.0.1:9/slow")
        fast = subscribe(other_operator, "http://127.0.0.1:9/fast")
        emit_many(operator, 50)
        emit_many(other_operator, 3)
        WebhookDelivery.objects.update(enqueued_at=None)  # their messages were lost
        services._claim(WebhookDelivery.objects.filter(subscription=slow).first().pk)  # one attempt under way
        enqueued.clear()
        assert webhook_deliveries_sweep() == 1 + 2
        sent = {d for d, _, _ in enqueued}
        assert WebhookDelivery.objects.filter(pk__in=sent, subscription=slow).count() == 1
        assert WebhookDelivery.objects.filter(pk__in=sent, subscription=fast).count() == 2


def _ok():
    from webhooks.transport import SendResult

    return SendResult(status=200, duration_ms=5, body="ok", error=None, retry_after=None)


@pytest.mark.django_db(transaction=True)
def test_a_retry_is_scheduled_for_its_due_time_on_the_retry_queue(operator, receiver, enqueued, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [1, 3600]
    subscribe(operator, receiver.url)
    emit_many(operator, 1)
    delivery = WebhookDelivery.objects.get()
    receiver.reply(Reply(500), Reply(500))
    enqueued.clear()
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    ((delivery_id, queue, countdown),) = enqueued
    assert (delivery_id, queue) == (delivery.pk, services.RETRY_QUEUE)
    scheduled = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 0.8 <= countdown <= 1.2 and abs(scheduled - countdown) < 0.5
    assert delivery.enqueued_at == delivery.next_attempt_at  # the sweeper waits for it
    enqueued.clear()
    delivery.next_attempt_at = timezone.now()
    delivery.save()
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert enqueued == []  # a retry an hour away is the sweeper's


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_slow_receiver_does_not_hold_back_another_operator(operator, other_operator, celery_worker, settings):
    """The worker has 3 processes; the slow endpoint (2 s per request, hundreds due) may hold 2 of them."""
    slow, fast = Receiver(), Receiver()
    slow.reply(*[Reply(delay=2.0) for _ in range(400)])
    with slow, fast:
        subscribe(operator, slow.url)
        subscribe(other_operator, fast.url)
        emit_many(operator, 300)
        wait_for(lambda: slow.count() >= 1, timeout=30, message="the slow receiver's first request")
        emit_many(other_operator, 1)
        # Behind one FIFO queue it would wait for ~300 x 2 s / 3 processes; the bound only allows for a loaded CI.
        wait_for(lambda: fast.count() == 1, timeout=45, message="the other operator's delivery")
        pending = WebhookDelivery.objects.filter(subscription__operator=operator, status="pending").count()
        assert pending >= 250, pending
        assert slow.count() <= 50  # at most two at a time were sent to it


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_retry_is_sent_at_its_due_time_without_the_sweeper(operator, receiver, celery_worker):
    """No beat runs here: only the task scheduled when the failure was recorded can send the retry."""
    subscribe(operator, receiver.url)
    receiver.reply(Reply(503))
    emit_many(operator, 1)
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(attempt_count=1, status="pending").first(),
        message="the first attempt to fail",
    )
    due = delivery.next_attempt_at.timestamp()
    wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="succeeded").exists(),
        timeout=30,
        message="the retry to succeed",
    )
    assert receiver.count() == 2
    # Sent when due, not up to a sweep interval later (the 5 s sweeper alone was seen 3.7-5 s late).
    assert due - 0.5 <= receiver.received[1].at <= due + 2.0
