"""Webhook deliveries run on a queue of their own: a backlog of them does not hold back charging commands."""

import pytest

from charging.models import ChargeSession
from tests.charging_support import START_URL, authorized_intent, make_station, make_tariff, make_terminal, start_body
from tests.conftest import wait_for
from tests.webhook_receiver import Reply
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]
BACKLOG = 24


def test_a_start_command_overtakes_a_webhook_backlog(client, operator, receiver):
    make_tariff(operator)
    make_station(operator)
    terminal = make_terminal(operator)
    intent = authorized_intent(operator)
    response = client.post(
        "/api/v1/webhooks", {"url": receiver.url, "event_types": ["payment_intent.created"]}, format="json"
    )
    assert response.status_code == 201
    receiver.reply(*[Reply(delay=0.5) for _ in range(BACKLOG)])  # a slow receiver: 24 x 0.5 s on 2 processes
    for _ in range(BACKLOG):
        client.post("/v1/payment-intents", {"amount": 100, "currency": "EUR"}, format="json")

    started = client.post(START_URL, start_body(terminal, intent), format="json")
    assert started.status_code == 201, started.content
    session_id = started.json()["id"]
    wait_for(
        lambda: ChargeSession.objects.get(pk=session_id).status == "charging",
        timeout=30,
        message="the session to start",
    )
    # Behind a single FIFO queue the start command would have waited for every delivery before it.
    assert receiver.count() < BACKLOG
    wait_for(lambda: receiver.count() == BACKLOG, timeout=60, message="the backlog to drain")
    # And every attempt recorded: a worker still writing one when the test's tables are truncated deadlocks.
    wait_for(
        lambda: not WebhookDelivery.objects.filter(status="pending").exists(), timeout=60, message="attempts recorded"
    )
