"""Cross-cutting rules of contract section 0: errors, pagination, limits, request ids, throttling, schema."""

from datetime import datetime, timedelta, timezone

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from payments.models import PaymentIntent
from tests.base import assert_problem

URL = "/v1/payment-intents"


@pytest.mark.django_db
class TestPagination:
    def test_cursor_pages_newest_first(self, client, operator):
        ids = [client.post(URL, {"amount": i + 1, "currency": "EUR"}, format="json").json()["id"] for i in range(5)]
        page = client.get(URL, {"limit": 2}).json()
        assert set(page) == {"results", "next", "previous"}
        assert [r["id"] for r in page["results"]] == ids[::-1][:2]
        assert page["previous"] is None
        seen = [r["id"] for r in page["results"]]
        while page["next"]:
            page = APIClient(HTTP_X_API_KEY=client.raw_key).get(page["next"]).json()
            seen += [r["id"] for r in page["results"]]
        assert seen == ids[::-1]

    def test_default_and_max_limit(self, client, operator):
        PaymentIntent.objects.bulk_create(
            [PaymentIntent(operator=operator, amount=1, currency="EUR") for _ in range(205)]
        )
        assert len(client.get(URL).json()["results"]) == 50
        assert len(client.get(URL, {"limit": 500}).json()["results"]) == 200

    @pytest.mark.parametrize(
        "params", [{"limit": "abc"}, {"limit": 0}, {"cursor": "garbage"}, {"created_after": "yesterday"}]
    )
    def test_bad_list_parameters_are_400(self, client, params):
        assert_problem(client.get(URL, params), 400, "validation_error")

    @pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
    def test_times_without_a_utc_equivalent_are_400(self, client, when):
        assert_problem(client.get(URL, {"created_after": when}), 400, "validation_error")
        assert_problem(client.get(URL, {"created_before": when}), 400, "validation_error")

    def test_a_time_with_an_offset_filters_by_its_utc_instant(self, client):
        intent = client.post(URL, {"amount": 100, "currency": "EUR"}, format="json").json()
        created = datetime.fromisoformat(intent["created_at"].replace("Z", "+00:00"))
        # 20 h ahead of UTC: more than PostgreSQL takes as an offset (15:59), converted before the query.
        just_before = (created - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=20)))
        assert [i["id"] for i in client.get(URL, {"created_after": just_before.isoformat()}).json()["results"]] == [
            intent["id"]
        ]
        assert client.get(URL, {"created_before": just_before.isoformat()}).json()["results"] == []


@pytest.mark.django_db
class TestLimitsAndHeaders:
    def test_body_over_64_kib_is_413(self, client):
        body = '{"amount": 1, "currency": "EUR", "description": "' + "x" * (64 * 1024) + '"}'
        response = client.post(URL, body, content_type="application/json")
        assert_problem(response, 413, "request_too_large")
        assert PaymentIntent.objects.count() == 0

    def test_request_id_is_echoed_or_generated(self, client):
        assert client.get(URL, HTTP_X_REQUEST_ID="abc-123").headers["X-Request-ID"] == "abc-123"
        generated = client.get(URL).headers["X-Request-ID"]
        assert generated.startswith("req_")
        assert client.get(URL, HTTP_X_REQUEST_ID="bad id\n").headers["X-Request-ID"] != "bad id\n"

    def test_unknown_api_path_is_problem_404(self, client):
        assert_problem(client.get("/v1/nothing-here"), 404, "not_found")

    def test_throttled_per_credential(self, make_client, operator, settings):
        from evpay.api.throttling import CredentialRateThrottle

        cache.clear()
        original = CredentialRateThrottle.THROTTLE_RATES
        CredentialRateThrottle.THROTTLE_RATES = {"credential": "3/min"}
        try:
            limited, other = make_client(operator), make_client(operator)
            statuses = [limited.get(URL).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            response = limited.get(URL)
            assert_problem(response, 429, "rate_limited")
            assert int(response.headers["Retry-After"]) >= 1
            assert other.get(URL).status_code == 200  # another key has its own bucket
        finally:
            CredentialRateThrottle.THROTTLE_RATES = original
            cache.clear()


@pytest.mark.django_db
class TestSchema:
    def test_schema_docs_and_redoc(self, anon_client):
        schema = anon_client.get("/api/schema", HTTP_ACCEPT="application/json")
        assert schema.status_code == 200
        spec = schema.json()
        schemes = spec["components"]["securitySchemes"]
        assert {"ApiKeyAuth", "BearerJWT"} <= set(schemes)
        capture = spec["paths"]["/v1/payment-intents/{id}/capture"]["post"]
        assert {"400", "401", "403", "404", "409", "422", "429"} <= set(capture["responses"])
        assert any(p["name"] == "Idempotency-Key" for p in capture["parameters"])
        assert "Problem" in spec["components"]["schemas"]
        assert anon_client.get("/api/docs").status_code == 200
        assert anon_client.get("/api/redoc").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_unknown_api_path_is_problem_404_in_debug_too(client, settings, debug):
    settings.DEBUG = debug
    assert_problem(client.get("/v1/nothing-here/at-all"), 404, "not_found")
    assert_problem(client.get("/api/v1/nothing"), 404, "not_found")
