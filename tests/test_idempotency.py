from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from evpay.core.models import IdempotencyKey
from evpay.core.services import idempotency_keys_prune
from payments.models import PaymentIntent
from tests.base import assert_problem
from webhooks.models import Event

URL = "/v1/payment-intents"
BODY = {"amount": 5000, "currency": "EUR"}


def post(client, body=BODY, key="key-1", path=URL):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
class TestIdempotency:
    def test_replay_returns_first_response_and_does_nothing(self, client):
        first = post(client)
        assert first.status_code == 201
        assert "Idempotent-Replayed" not in first.headers
        again = post(client)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert PaymentIntent.objects.count() == 1
        assert Event.objects.filter(type="payment_intent.created").count() == 1

    def test_key_order_and_whitespace_do_not_matter(self, client):
        first = post(client)
        again = client.post(
            URL, '{ "currency": "EUR",  "amount": 5000 }', content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-1"
        )
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]

    def test_other_body_is_422(self, client):
        post(client)
        assert_problem(post(client, body={"amount": 6000, "currency": "EUR"}), 422, "idempotency_key_reused")
        assert PaymentIntent.objects.count() == 1

    def test_other_path_is_422(self, client):
        intent = post(client).json()
        response = post(client, body={}, path=f"{URL}/{intent['id']}/void")
        assert_problem(response, 422, "idempotency_key_reused")
        assert PaymentIntent.objects.get(pk=intent["id"]).status == "requires_authorization"

    def test_errors_are_replayed_too(self, client):
        intent = post(client, key="k0").json()
        first = post(client, body={"amount_to_capture": 1}, key="cap", path=f"{URL}/{intent['id']}/capture")
        assert_problem(first, 409, "invalid_state")
        again = post(client, body={"amount_to_capture": 1}, key="cap", path=f"{URL}/{intent['id']}/capture")
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()

    def test_in_flight_is_409(self, client):
        first = post(client, key="busy")
        # Put the key back into the state a still-running first request leaves it in.
        IdempotencyKey.objects.filter(key="busy").update(completed_at=None, response_status=None, response_body=None)
        assert_problem(post(client, key="busy"), 409, "idempotency_key_in_use")
        assert first.status_code == 201 and PaymentIntent.objects.count() == 1

    def test_stale_in_flight_key_can_be_taken_over(self, client, settings):
        post(client, key="stale")
        IdempotencyKey.objects.filter(key="stale").update(
            completed_at=None, created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT + 1)
        )
        assert post(client, key="stale").status_code == 201
        assert PaymentIntent.objects.count() == 2

    def test_scoped_per_operator(self, client, other_client):
        mine = post(client).json()
        theirs = post(other_client)
        assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
        assert theirs.json()["id"] != mine["id"]

    def test_5xx_is_not_stored(self, client):
        intent = post(client, key="k0").json()
        body = {"payment_method": {"type": "card_present", "token": "tok_processorUnavailable"}}
        path = f"{URL}/{intent['id']}/authorize"
        assert post(client, body=body, key="auth", path=path).status_code == 503
        assert not IdempotencyKey.objects.filter(key="auth").exists()
        assert post(client, body=body, key="auth", path=path).status_code == 503

    @pytest.mark.parametrize("key", ["", "x" * 256])
    def test_key_length(self, client, key):
        assert_problem(post(client, key=key), 400, "validation_error")
        assert PaymentIntent.objects.count() == 0

    def test_prune_removes_keys_older_than_ttl(self, client):
        post(client, key="old")
        post(client, key="new")
        IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
        assert idempotency_keys_prune() == 1
        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_parallel_repeats_of_a_released_key_never_500(client, parallel):
    """A 5xx releases (deletes) the key while repeats race to claim it: each repeat answers 503 or 409."""
    intent = post(client, key="k0").json()
    body = {"payment_method": {"type": "card_present", "token": "tok_processorUnavailable"}}

    def repeat(i):
        repeater = APIClient()
        repeater.credentials(HTTP_X_API_KEY=client.raw_key)
        return [
            post(repeater, body=body, key="released", path=f"{URL}/{intent['id']}/authorize").status_code
            for _ in range(10)
        ]

    statuses = {status for result in parallel(repeat, 10) for status in result}
    assert statuses <= {503, 409}, statuses
    assert 503 in statuses
