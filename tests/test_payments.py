from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from payments.models import PaymentIntent
from terminals.models import Terminal
from tests.base import EndpointAccessTests, assert_problem
from webhooks.models import Event

URL = "/v1/payment-intents"
VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}


def create(client, **body):
    body = {"amount": 5000, "currency": "EUR", **body}
    return client.post(URL, body, format="json")


def authorized_intent(client, amount=5000, currency="EUR"):
    intent = create(client, amount=amount, currency=currency).json()
    response = client.post(f"{URL}/{intent['id']}/authorize", VISA, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def events(intent_id, type_=None):
    qs = Event.objects.filter(data__object__id=intent_id)
    return list(qs.filter(type=type_) if type_ else qs)


class TestPaymentIntentAccess(EndpointAccessTests):
    scope_resource = "payments"
    endpoints = [
        ("POST", URL, {"amount": 100, "currency": "EUR"}),
        ("GET", URL + "/{id}", None),
        ("POST", URL + "/{id}/authorize", VISA),
        ("POST", URL + "/{id}/capture", {}),
        ("POST", URL + "/{id}/void", {}),
    ]

    def make_object(self, operator):
        return PaymentIntent.objects.create(operator=operator, amount=100, currency="EUR")


@pytest.mark.django_db
class TestCreate:
    def test_creates_in_requires_authorization(self, client):
        response = create(client, description="Bay 3", metadata={"bay": "3"})
        assert response.status_code == 201
        body = response.json()
        assert body["id"].startswith("pi_")
        assert body["object"] == "payment_intent"
        assert body["status"] == "requires_authorization"
        assert (body["amount"], body["currency"]) == (5000, "EUR")
        assert body["amount_authorized"] == body["amount_capturable"] == body["amount_captured"] == 0
        assert body["capture_before"] is None and body["payment_method"] is None
        assert body["processor"] == "simulator"
        assert body["metadata"] == {"bay": "3"} and body["description"] == "Bay 3"
        assert body["created_at"].endswith("Z")
        assert [e.type for e in events(body["id"])] == ["payment_intent.created"]

    def test_get_returns_the_intent(self, client):
        intent = create(client).json()
        response = client.get(f"{URL}/{intent['id']}")
        assert response.status_code == 200
        assert response.json() == intent

    def test_unknown_id_is_404(self, client):
        assert_problem(client.get(f"{URL}/pi_doesnotexist"), 404, "not_found")

    @pytest.mark.parametrize(
        "currency,amount", [("EUR", 5000), ("JPY", 5000), ("KWD", 5000), ("EUR", 1), ("EUR", 99_999_999)]
    )
    def test_amounts_in_minor_units_of_any_currency(self, client, currency, amount):
        response = create(client, amount=amount, currency=currency)
        assert response.status_code == 201
        assert response.json()["amount"] == amount

    @pytest.mark.parametrize("amount", [0, -1, 100_000_000, 10.5, "10.50", "abc", None, True])
    def test_amount_out_of_bounds_or_not_an_integer(self, client, amount):
        body = assert_problem(create(client, amount=amount), 400, "validation_error")
        assert "amount" in body["errors"]
        assert PaymentIntent.objects.count() == 0

    @pytest.mark.parametrize("currency", ["XXY", "eur", "EURO", "", 12])
    def test_unknown_currency(self, client, currency):
        body = assert_problem(create(client, currency=currency), 400, "validation_error")
        assert "currency" in body["errors"]

    def test_missing_fields(self, client):
        body = assert_problem(client.post(URL, {}, format="json"), 400, "validation_error")
        assert set(body["errors"]) >= {"amount", "currency"}

    def test_terminal_of_operator(self, client, operator):
        terminal = Terminal.objects.create(operator=operator, serial_number="SN1")
        response = create(client, terminal_id=terminal.pk)
        assert response.status_code == 201
        assert response.json()["terminal_id"] == terminal.pk

    def test_terminal_of_another_operator_is_400(self, client, other_operator):
        terminal = Terminal.objects.create(operator=other_operator, serial_number="SN1")
        body = assert_problem(create(client, terminal_id=terminal.pk), 400, "validation_error")
        assert "terminal_id" in body["errors"]
        assert_problem(create(client, terminal_id="trm_nope"), 400, "validation_error")

    @pytest.mark.parametrize(
        "metadata",
        [
            {f"k{i}": "v" for i in range(21)},
            {"k" * 41: "v"},
            {"k": "v" * 501},
            ["a"],
            "text",
            {"k": {"n": 1}},
        ],
    )
    def test_metadata_limits(self, client, metadata):
        body = assert_problem(create(client, metadata=metadata), 400, "validation_error")
        assert "metadata" in body["errors"]

    def test_read_only_fields_are_ignored(self, client, operator, other_operator):
        response = create(client, status="captured", amount_captured=5000, id="pi_mine", operator=other_operator.pk)
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "requires_authorization" and body["amount_captured"] == 0
        assert body["id"] != "pi_mine"
        assert PaymentIntent.objects.get(pk=body["id"]).operator == operator

    def test_malformed_json_is_400(self, client):
        response = client.post(URL, "{not json", content_type="application/json")
        assert_problem(response, 400, "validation_error")

    def test_unsupported_media_type(self, client):
        response = client.post(URL, "amount=1", content_type="application/x-www-form-urlencoded")
        assert_problem(response, 415, "unsupported_media_type")

    def test_method_not_allowed(self, client):
        intent = create(client).json()
        assert_problem(client.delete(f"{URL}/{intent['id']}"), 405, "method_not_allowed")

    def test_list_is_operator_scoped_and_filterable(self, client, other_client):
        mine = create(client).json()
        authorized_intent(client)
        create(other_client)
        response = client.get(URL, {"status": "requires_authorization"})
        assert response.status_code == 200
        assert [i["id"] for i in response.json()["results"]] == [mine["id"]]
        assert_problem(client.get(URL, {"status": "bogus"}), 400, "validation_error")


@pytest.mark.django_db
class TestAuthorize:
    @pytest.mark.parametrize(
        "token,brand,last4",
        [("tok_visa", "visa", "4242"), ("tok_mastercard", "mastercard", "4444"), ("tok_amex", "amex", "8431")],
    )
    def test_approved(self, client, token, brand, last4):
        intent = create(client).json()
        before = timezone.now()
        response = client.post(
            f"{URL}/{intent['id']}/authorize",
            {"payment_method": {"type": "card_present", "token": token}},
            format="json",
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "authorized"
        assert body["amount_authorized"] == body["amount_capturable"] == 5000
        assert body["payment_method"]["type"] == "card_present"
        assert (body["payment_method"]["brand"], body["payment_method"]["last4"]) == (brand, last4)
        assert body["payment_method"]["fingerprint"]
        assert body["processor_reference"] and body["authorization_code"]
        stored = PaymentIntent.objects.get(pk=intent["id"])
        assert stored.capture_before - stored.authorized_at == timedelta(days=7)
        assert stored.authorized_at >= before
        assert [e.type for e in events(intent["id"])] == ["payment_intent.authorized", "payment_intent.created"]

    @override_settings(PAYMENT_AUTHORIZATION_TTL=60)
    def test_ttl_setting(self, client):
        body = authorized_intent(client)
        stored = PaymentIntent.objects.get(pk=body["id"])
        assert stored.capture_before - stored.authorized_at == timedelta(seconds=60)

    @pytest.mark.parametrize(
        "token,decline_code",
        [
            ("tok_chargeDeclined", "generic_decline"),
            ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
            ("tok_chargeDeclinedExpiredCard", "expired_card"),
        ],
    )
    def test_declined(self, client, token, decline_code):
        intent = create(client).json()
        response = client.post(
            f"{URL}/{intent['id']}/authorize",
            {"payment_method": {"type": "card_present", "token": token}},
            format="json",
        )
        body = assert_problem(response, 402, "card_declined")
        assert body["decline_code"] == decline_code
        stored = client.get(f"{URL}/{intent['id']}").json()
        assert stored["status"] == "requires_authorization"
        assert stored["last_payment_error"]["decline_code"] == decline_code
        assert stored["last_payment_error"]["code"] == "card_declined"
        assert len(events(intent["id"], "payment_intent.authorization_failed")) == 1
        # A declined intent can be authorized with another card.
        assert client.post(f"{URL}/{intent['id']}/authorize", VISA, format="json").status_code == 200

    def test_processor_unavailable_is_503_and_changes_nothing(self, client):
        intent = create(client).json()
        response = client.post(
            f"{URL}/{intent['id']}/authorize",
            {"payment_method": {"type": "card_present", "token": "tok_processorUnavailable"}},
            format="json",
        )
        assert_problem(response, 503, "processor_unavailable")
        assert client.get(f"{URL}/{intent['id']}").json() == intent
        assert len(events(intent["id"])) == 1
        # Safe to retry at once.
        assert client.post(f"{URL}/{intent['id']}/authorize", VISA, format="json").status_code == 200

    def test_unknown_token_is_invalid_payment_method(self, client):
        intent = create(client).json()
        response = client.post(
            f"{URL}/{intent['id']}/authorize",
            {"payment_method": {"type": "card_present", "token": "4242424242424242"}},
            format="json",
        )
        assert_problem(response, 400, "invalid_payment_method")
        assert client.get(f"{URL}/{intent['id']}").json()["status"] == "requires_authorization"

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"payment_method": {"type": "card", "token": "tok_visa"}},
            {"payment_method": {"type": "card_present"}},
            {"payment_method": "tok_visa"},
        ],
    )
    def test_bad_payment_method_shape(self, client, body):
        intent = create(client).json()
        assert_problem(client.post(f"{URL}/{intent['id']}/authorize", body, format="json"), 400, "validation_error")

    def test_wrong_state(self, client):
        intent = authorized_intent(client)
        body = assert_problem(client.post(f"{URL}/{intent['id']}/authorize", VISA, format="json"), 409, "invalid_state")
        assert intent["id"] in body["detail"]


@pytest.mark.django_db
class TestCapture:
    def test_full_capture_by_default(self, client):
        intent = authorized_intent(client)
        response = client.post(f"{URL}/{intent['id']}/capture", {}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "captured"
        assert body["amount_captured"] == 5000 and body["amount_capturable"] == 0
        assert body["captured_at"]
        assert len(events(intent["id"], "payment_intent.captured")) == 1

    def test_partial_capture_releases_the_rest(self, client):
        intent = authorized_intent(client)
        body = client.post(f"{URL}/{intent['id']}/capture", {"amount_to_capture": 1234}, format="json").json()
        assert (body["status"], body["amount_captured"], body["amount_capturable"]) == ("captured", 1234, 0)
        # One capture per intent.
        assert_problem(
            client.post(f"{URL}/{intent['id']}/capture", {"amount_to_capture": 1}, format="json"), 409, "invalid_state"
        )

    def test_amount_exceeds_capturable(self, client):
        intent = authorized_intent(client)
        response = client.post(f"{URL}/{intent['id']}/capture", {"amount_to_capture": 5001}, format="json")
        assert_problem(response, 400, "amount_exceeds_capturable")
        assert client.get(f"{URL}/{intent['id']}").json()["status"] == "authorized"

    @pytest.mark.parametrize("amount", [0, -5, "x"])
    def test_non_positive_amount(self, client, amount):
        intent = authorized_intent(client)
        response = client.post(f"{URL}/{intent['id']}/capture", {"amount_to_capture": amount}, format="json")
        assert_problem(response, 400, "validation_error")

    def test_requires_authorized(self, client):
        intent = create(client).json()
        assert_problem(client.post(f"{URL}/{intent['id']}/capture", {}, format="json"), 409, "invalid_state")

    def test_after_capture_before_is_authorization_expired(self, client):
        intent = authorized_intent(client)
        PaymentIntent.objects.filter(pk=intent["id"]).update(capture_before=timezone.now() - timedelta(seconds=1))
        response = client.post(f"{URL}/{intent['id']}/capture", {}, format="json")
        assert_problem(response, 409, "authorization_expired")
        assert client.get(f"{URL}/{intent['id']}").json()["status"] == "authorized"

    @override_settings(PAYMENT_SIMULATOR_FAIL=["capture"])
    def test_processor_down_is_503_and_retryable(self, client):
        intent = authorized_intent(client)
        assert_problem(client.post(f"{URL}/{intent['id']}/capture", {}, format="json"), 503, "processor_unavailable")
        assert client.get(f"{URL}/{intent['id']}").json()["status"] == "authorized"
        with override_settings(PAYMENT_SIMULATOR_FAIL=[]):
            assert client.post(f"{URL}/{intent['id']}/capture", {}, format="json").status_code == 200


@pytest.mark.django_db
class TestVoid:
    def test_void_authorized(self, client):
        intent = authorized_intent(client)
        response = client.post(f"{URL}/{intent['id']}/void", {"reason": "abandoned"}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["void_reason"], body["amount_capturable"]) == ("voided", "abandoned", 0)
        assert body["voided_at"]
        assert len(events(intent["id"], "payment_intent.voided")) == 1

    def test_void_requires_authorization_default_reason(self, client):
        intent = create(client).json()
        body = client.post(f"{URL}/{intent['id']}/void", {}, format="json").json()
        assert (body["status"], body["void_reason"]) == ("voided", "requested_by_customer")

    def test_bad_reason(self, client):
        intent = create(client).json()
        assert_problem(
            client.post(f"{URL}/{intent['id']}/void", {"reason": "bored"}, format="json"), 400, "validation_error"
        )

    @pytest.mark.parametrize("final", ["captured", "voided", "expired"])
    def test_final_states_cannot_be_voided(self, client, final):
        intent = authorized_intent(client)
        PaymentIntent.objects.filter(pk=intent["id"]).update(status=final)
        assert_problem(client.post(f"{URL}/{intent['id']}/void", {}, format="json"), 409, "invalid_state")


@pytest.mark.django_db
class TestExpiry:
    def test_beat_task_expires_authorizations_past_capture_before(self, client):
        from payments.tasks import expire_authorizations

        due = authorized_intent(client)
        fresh = authorized_intent(client)
        PaymentIntent.objects.filter(pk=due["id"]).update(capture_before=timezone.now() - timedelta(minutes=1))
        assert expire_authorizations() == 1
        due_now = client.get(f"{URL}/{due['id']}").json()
        assert (due_now["status"], due_now["amount_capturable"]) == ("expired", 0)
        assert client.get(f"{URL}/{fresh['id']}").json()["status"] == "authorized"
        assert len(events(due["id"], "payment_intent.expired")) == 1
        assert expire_authorizations() == 0
        assert_problem(client.post(f"{URL}/{due['id']}/capture", {}, format="json"), 409, "invalid_state")

    @override_settings(PAYMENT_SIMULATOR_FAIL=["void"])
    def test_processor_down_leaves_it_for_the_next_run(self, client):
        from payments.tasks import expire_authorizations

        due = authorized_intent(client)
        PaymentIntent.objects.filter(pk=due["id"]).update(capture_before=timezone.now() - timedelta(minutes=1))
        assert expire_authorizations() == 0
        assert PaymentIntent.objects.get(pk=due["id"]).status == "authorized"
        with override_settings(PAYMENT_SIMULATOR_FAIL=[]):
            assert expire_authorizations() == 1
