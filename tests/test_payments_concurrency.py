"""Real threads, real PostgreSQL connections: one transition wins, the rest get 409."""

import pytest
from rest_framework.test import APIClient

from webhooks.models import Event

URL = "/v1/payment-intents"
VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}
N = 20


def _post(raw_key, path, body):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    return client.post(path, body, format="json").status_code


def _event_count(intent_id, type_):
    return Event.objects.filter(type=type_, data__object__id=intent_id).count()


@pytest.fixture
def authorized(client):
    intent = client.post(URL, {"amount": 5000, "currency": "EUR"}, format="json").json()
    assert client.post(f"{URL}/{intent['id']}/authorize", VISA, format="json").status_code == 200
    return intent["id"]


@pytest.mark.django_db(transaction=True)
def test_parallel_captures_one_wins(client, authorized, parallel):
    statuses = parallel(lambda i: _post(client.raw_key, f"{URL}/{authorized}/capture", {}), N)
    assert sorted(statuses) == [200] + [409] * (N - 1), statuses
    assert _event_count(authorized, "payment_intent.captured") == 1
    assert client.get(f"{URL}/{authorized}").json()["amount_captured"] == 5000


@pytest.mark.django_db(transaction=True)
def test_parallel_authorizations_one_wins(client, parallel):
    intent = client.post(URL, {"amount": 5000, "currency": "EUR"}, format="json").json()
    statuses = parallel(lambda i: _post(client.raw_key, f"{URL}/{intent['id']}/authorize", VISA), N)
    assert sorted(statuses) == [200] + [409] * (N - 1), statuses
    assert _event_count(intent["id"], "payment_intent.authorized") == 1


@pytest.mark.django_db(transaction=True)
def test_void_racing_capture_exactly_one_transition(client, authorized, parallel):
    def act(i):
        action = "capture" if i % 2 == 0 else "void"
        return action, _post(client.raw_key, f"{URL}/{authorized}/{action}", {})

    results = parallel(act, N)
    winners = [r for r in results if r[1] == 200]
    assert len(winners) == 1, results
    assert all(status == 409 for _, status in results if status != 200)
    final = client.get(f"{URL}/{authorized}").json()["status"]
    assert final == {"capture": "captured", "void": "voided"}[winners[0][0]]
    assert _event_count(authorized, "payment_intent.captured") + _event_count(authorized, "payment_intent.voided") == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_same_idempotency_key_one_execution(client, authorized, parallel):
    def act(i):
        c = APIClient()
        c.credentials(HTTP_X_API_KEY=client.raw_key, HTTP_IDEMPOTENCY_KEY="cap-1")
        r = c.post(f"{URL}/{authorized}/capture", {}, format="json")
        return r.status_code, r.headers.get("Idempotent-Replayed"), r.json().get("code")

    results = parallel(act, 10)
    fresh = [r for r in results if r[0] == 200 and r[1] is None]
    assert len(fresh) == 1, results
    for status, replayed, code in results:
        assert (status == 200 and (replayed in (None, "true"))) or (status == 409 and code == "idempotency_key_in_use")
    assert _event_count(authorized, "payment_intent.captured") == 1
