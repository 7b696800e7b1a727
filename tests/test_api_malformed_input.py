"""Malformed input anywhere is a clear 400 (or 404 for an id) and changes nothing; never a 500."""

import pytest

from infrastructure.models import StationMapping
from payments.models import PaymentIntent
from tests.base import assert_problem

URL = "/v1/payment-intents"


@pytest.mark.django_db
class TestUnstorableStrings:
    """NUL fits no PostgreSQL text/jsonb column and a lone surrogate cannot be encoded as UTF-8."""

    @pytest.mark.parametrize("escaped", [r"\u0000", r"a\u0000b", r"\ud800", r"x\udfffy"])
    @pytest.mark.parametrize("template", [
        '{"amount": 100, "currency": "EUR", "metadata": {"k": "%s"}}',
        '{"amount": 100, "currency": "EUR", "metadata": {"%s": "v"}}',
        '{"amount": 100, "currency": "EUR", "terminal_id": "%s"}',
        '{"amount": 100, "currency": "EUR", "description": "%s"}',
    ])
    def test_in_a_payment_intent_body_is_400(self, client, template, escaped):
        response = client.post(URL, template % escaped, content_type="application/json")
        body = assert_problem(response, 400, "validation_error")
        assert body["errors"]
        assert PaymentIntent.objects.count() == 0

    @pytest.mark.parametrize("escaped", [r"\u0000", r"\ud800"])
    def test_in_a_choice_or_nested_json_field_is_400(self, client, escaped):
        connectors = ('[{"connector_id": "1", "evse_uid": "%s", "standard": "IEC_62196_T2", '
                      '"power_type": "AC_3_PHASE", "max_power_kw": 11}]' % escaped)
        for path, body in [
            ("/v1/charging-infrastructure/mappings",
             '{"station_id": "S1", "adapter_type": "simulator", "cpms_station_id": "c", "connectors": %s}' % connectors),
            ("/v1/charging-infrastructure/mappings",
             '{"station_id": "S1", "adapter_type": "simulator", "cpms_station_id": "c", "tariff_id": "%s", '
             '"connectors": []}' % escaped),
            ("/v1/terminals", '{"serial_number": "SN1", "vendor": "v", "model": "m", "status": "%s"}' % escaped),
        ]:
            assert_problem(client.post(path, body, content_type="application/json"), 400, "validation_error")
        assert not StationMapping.objects.exists()


@pytest.mark.django_db
class TestMalformedBody:
    def test_unparseable_json_is_a_validation_error_with_errors(self, client):
        body = assert_problem(client.post(URL, "{bad", content_type="application/json"), 400, "validation_error")
        assert body["errors"]["non_field_errors"]


@pytest.mark.django_db
class TestNulInPathIds:
    @pytest.mark.parametrize("method,path", [
        ("get", "/v1/payment-intents/pi_%00"),
        ("post", "/v1/payment-intents/%00/capture"),
        ("get", "/v1/adhoc-charges/%00"),
        ("put", "/v1/terminals/trm_%00/status"),
        ("patch", "/v1/tariffs/%00"),
        ("get", "/api/v1/webhooks/whs_%00/deliveries"),
        ("delete", "/v1/charging-infrastructure/mappings/%00"),
    ])
    def test_is_a_plain_404(self, client, method, path):
        assert_problem(getattr(client, method)(path, {}, format="json"), 404, "not_found")
