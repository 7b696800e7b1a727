"""Malformed input anywhere is a clear 400 (or 404 for an id) and changes nothing; never a 500."""

import pytest

from infrastructure.models import StationMapping
from payments.models import PaymentIntent
from payments.services import payment_intent_authorize, payment_intent_create
from tests.base import assert_problem

URL = "/v1/payment-intents"


@pytest.mark.django_db
class TestUnstorableStrings:
    """NUL fits no PostgreSQL text/jsonb column and a lone surrogate cannot be encoded as UTF-8."""

    @pytest.mark.parametrize("escaped", [r"\u0000", r"a\u0000b", r"\ud800", r"x\udfffy"])
    @pytest.mark.parametrize(
        "template",
        [
            '{"amount": 100, "currency": "EUR", "metadata": {"k": "@"}}',
            '{"amount": 100, "currency": "EUR", "metadata": {"@": "v"}}',
            '{"amount": 100, "currency": "EUR", "terminal_id": "@"}',
            '{"amount": 100, "currency": "EUR", "description": "@"}',
        ],
    )
    def test_in_a_payment_intent_body_is_400(self, client, template, escaped):
        response = client.post(URL, template.replace("@", escaped), content_type="application/json")
        body = assert_problem(response, 400, "validation_error")
        assert body["errors"]
        assert PaymentIntent.objects.count() == 0

    @pytest.mark.parametrize("escaped", [r"\u0000", r"\ud800"])
    def test_in_a_choice_or_nested_json_field_is_400(self, client, escaped):
        connector = (
            '{"connector_id": "1", "evse_uid": "@", "standard": "IEC_62196_T2", "power_type": "AC_3_PHASE", '
            '"max_power_kw": 11}'
        )
        mapping = '{"station_id": "S1", "adapter_type": "simulator", "cpms_station_id": "c", '
        for path, body in [
            ("/v1/charging-infrastructure/mappings", mapping + '"connectors": [' + connector + "]}"),
            ("/v1/charging-infrastructure/mappings", mapping + '"tariff_id": "@", "connectors": []}'),
            ("/v1/terminals", '{"serial_number": "SN1", "vendor": "v", "model": "m", "status": "@"}'),
        ]:
            response = client.post(path, body.replace("@", escaped), content_type="application/json")
            assert_problem(response, 400, "validation_error")
        assert not StationMapping.objects.exists()


@pytest.mark.django_db
class TestMalformedBody:
    def test_unparseable_json_is_a_validation_error_with_errors(self, client):
        body = assert_problem(client.post(URL, "{bad", content_type="application/json"), 400, "validation_error")
        assert body["errors"]["non_field_errors"]


@pytest.mark.django_db
class TestNulInPathIds:
    @pytest.mark.parametrize(
        "method,path",
        [
            ("get", "/v1/payment-intents/pi_%00"),
            ("post", "/v1/payment-intents/%00/capture"),
            ("get", "/v1/adhoc-charges/%00"),
            ("put", "/v1/terminals/trm_%00/status"),
            ("patch", "/v1/tariffs/%00"),
            ("get", "/api/v1/webhooks/whs_%00/deliveries"),
            ("delete", "/v1/charging-infrastructure/mappings/%00"),
        ],
    )
    def test_is_a_plain_404(self, client, method, path):
        assert_problem(getattr(client, method)(path, {}, format="json"), 404, "not_found")


@pytest.mark.django_db
class TestAmountsAreJsonIntegers:
    @pytest.mark.parametrize("amount", ["5000", " 5000", True, 10.5])
    def test_amount_of_another_type_is_400(self, client, amount):
        assert_problem(client.post(URL, {"amount": amount, "currency": "EUR"}, format="json"), 400, "validation_error")
        assert PaymentIntent.objects.count() == 0

    def test_integral_number_is_accepted(self, client):
        assert client.post(URL, {"amount": 5000.0, "currency": "EUR"}, format="json").json()["amount"] == 5000

    def test_amount_to_capture_string_is_400(self, client, operator):
        intent = payment_intent_create(operator=operator, amount=5000, currency="EUR")
        intent = payment_intent_authorize(intent=intent, token="tok_visa")
        assert_problem(
            client.post(f"{URL}/{intent.pk}/capture", {"amount_to_capture": "100"}, format="json"),
            400,
            "validation_error",
        )
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"
