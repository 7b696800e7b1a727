"""Tariffs (`/v1/tariffs`) and the price quote (`/v1/adhoc-charges/quote`)."""

import pytest
from django.test import Client

from charging.models import Tariff
from evpay.core.services import operator_user_create
from tests.base import EndpointAccessTests, assert_problem
from tests.charging_support import held_open_elsewhere, make_station, make_tariff

URL = "/v1/tariffs"
QUOTE = "/v1/adhoc-charges/quote"
BODY = {
    "name": "AC standard",
    "currency": "EUR",
    "price_per_kwh": "0.59",
    "price_per_minute": "0.05",
    "session_fee": "1.00",
    "vat_rate_percent": "19",
    "preauthorize_amount": 5000,
}


class TestTariffAccess(EndpointAccessTests):
    scope_resource = "charges"
    endpoints = [
        ("GET", URL, None),
        ("POST", URL, BODY),
        ("GET", URL + "/{id}", None),
        ("PATCH", URL + "/{id}", {"name": "x"}),
    ]

    def make_object(self, operator):
        return make_tariff(operator, is_default=False)


class TestQuoteAccess(EndpointAccessTests):
    scope_resource = "charges"
    endpoints = [("GET", QUOTE + "?station_id=DE*EVP*S1&connector_id=1", None)]
    # The quote names the operator's station in its query: another operator asking for it gets a 404.
    object_endpoints = endpoints

    def make_object(self, operator):
        make_station(operator, tariff=make_tariff(operator))
        return operator


@pytest.mark.django_db
class TestTariffs:
    def test_create_and_read(self, client):
        response = client.post(URL, BODY, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["id"].startswith("trf_")
        assert body["price_per_kwh"] == "0.59" and body["price_per_minute"] == "0.05"
        assert body["session_fee"] == "1.00" and body["vat_rate_percent"] == "19.00"
        assert body["preauthorize_amount"] == 5000 and body["is_default"] is False
        assert client.get(f"{URL}/{body['id']}").json() == body
        assert [t["id"] for t in client.get(URL).json()["results"]] == [body["id"]]

    def test_defaults_and_four_decimals(self, client):
        body = client.post(
            URL, {"name": "n", "currency": "KWD", "price_per_kwh": "0.1234", "preauthorize_amount": 5000}, format="json"
        ).json()
        assert (body["price_per_kwh"], body["price_per_minute"], body["session_fee"]) == ("0.1234", "0.00", "0.00")
        assert body["vat_rate_percent"] == "0.00"

    def test_list_is_operator_scoped(self, client, other_operator):
        make_tariff(other_operator)
        assert client.get(URL).json()["results"] == []

    def test_setting_default_moves_it(self, client, operator):
        first = client.post(URL, {**BODY, "is_default": True}, format="json").json()
        second = client.post(URL, {**BODY, "is_default": True}, format="json").json()
        assert second["is_default"] is True
        assert client.get(f"{URL}/{first['id']}").json()["is_default"] is False
        response = client.patch(f"{URL}/{first['id']}", {"is_default": True}, format="json")
        assert response.status_code == 200 and response.json()["is_default"] is True
        assert list(Tariff.objects.filter(operator=operator, is_default=True).values_list("id", flat=True)) == [
            first["id"]
        ]

    def test_patch_changes_only_given_fields(self, client):
        tariff = client.post(URL, BODY, format="json").json()
        response = client.patch(f"{URL}/{tariff['id']}", {"price_per_kwh": "0.65", "id": "trf_x"}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["price_per_kwh"] == "0.65" and body["session_fee"] == "1.00" and body["id"] == tariff["id"]

    def test_put_is_not_allowed(self, client):
        tariff = client.post(URL, BODY, format="json").json()
        assert_problem(client.put(f"{URL}/{tariff['id']}", BODY, format="json"), 405)

    def test_unknown_id_is_404(self, client):
        assert_problem(client.get(f"{URL}/trf_nope"), 404, "not_found")
        assert_problem(client.patch(f"{URL}/trf_nope", {"name": "x"}, format="json"), 404, "not_found")

    @pytest.mark.parametrize(
        "field,value",
        [
            ("price_per_kwh", "-0.01"),
            ("price_per_kwh", "0.12345"),
            ("price_per_kwh", "abc"),
            ("price_per_kwh", 0.59),
            ("price_per_minute", "NaN"),
            ("session_fee", "1e3x"),
            ("vat_rate_percent", "101"),
            ("vat_rate_percent", "-1"),
            ("currency", "XXY"),
            ("currency", "eur"),
            ("preauthorize_amount", 0),
            ("preauthorize_amount", "50.00"),
            ("name", ""),
            ("price_per_kwh", "123456789.0"),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, client, field, value):
        body = assert_problem(client.post(URL, {**BODY, field: value}, format="json"), 400, "validation_error")
        assert field in body["errors"]
        assert Tariff.objects.count() == 0

    def test_patch_bad_input_changes_nothing(self, client):
        tariff = client.post(URL, BODY, format="json").json()
        assert_problem(
            client.patch(f"{URL}/{tariff['id']}", {"price_per_kwh": "-1"}, format="json"), 400, "validation_error"
        )
        assert client.get(f"{URL}/{tariff['id']}").json()["price_per_kwh"] == "0.59"

    def test_missing_fields(self, client):
        body = assert_problem(client.post(URL, {}, format="json"), 400, "validation_error")
        assert set(body["errors"]) >= {"name", "currency", "preauthorize_amount"}


@pytest.mark.django_db
class TestQuote:
    def test_quote_with_vat_inclusive_display(self, client, operator):
        tariff = make_tariff(
            operator,
            price_per_kwh="0.59",
            price_per_minute="0.10",
            session_fee="1.50",
            vat_rate_percent="19",
            preauthorize_amount=7500,
        )
        make_station(operator)  # no own tariff: the default applies
        response = client.get(QUOTE, {"station_id": "DE*EVP*S1", "connector_id": "1"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["station_id"], body["connector_id"], body["connector_status"]) == ("DE*EVP*S1", "1", "UNKNOWN")
        assert body["tariff"]["id"] == tariff.pk and body["preauthorize_amount"] == 7500
        assert body["display"] == {
            "price_per_kwh_incl_vat": "0.7021",
            "price_per_minute_incl_vat": "0.1190",
            "session_fee_incl_vat": "1.79",
        }

    def test_connector_with_a_running_session_shows_charging(self, client, operator):
        from tests.charging_support import start_session

        make_tariff(operator)
        make_station(operator)
        start_session(operator)
        body = client.get(QUOTE, {"station_id": "DE*EVP*S1", "connector_id": "1"}).json()
        assert body["connector_status"] == "CHARGING"

    def test_mapping_tariff_wins_over_default(self, client, operator):
        make_tariff(operator, name="default")
        own = make_tariff(
            operator, name="own", currency="JPY", session_fee="100", vat_rate_percent="10", is_default=False
        )
        make_station(operator, tariff=own)
        body = client.get(QUOTE, {"station_id": "DE*EVP*S1", "connector_id": "1"}).json()
        assert body["tariff"]["id"] == own.pk and body["display"]["session_fee_incl_vat"] == "110"

    def test_unknown_connector_station_or_other_operator_is_404(self, client, operator, other_operator):
        make_tariff(operator)
        make_station(operator)
        make_station(other_operator, station_id="DE*OTH*S1")
        for query in (
            {"station_id": "DE*EVP*S1", "connector_id": "9"},
            {"station_id": "nope", "connector_id": "1"},
            {"station_id": "DE*OTH*S1", "connector_id": "1"},
        ):
            assert_problem(client.get(QUOTE, query), 404, "not_found")

    def test_inactive_mapping_is_404(self, client, operator):
        from infrastructure.services import mapping_update

        make_tariff(operator)
        mapping_update(mapping=make_station(operator), is_active=False)
        assert_problem(client.get(QUOTE, {"station_id": "DE*EVP*S1", "connector_id": "1"}), 404, "not_found")

    def test_missing_parameters_are_400(self, client):
        body = assert_problem(client.get(QUOTE), 400, "validation_error")
        assert set(body["errors"]) == {"station_id", "connector_id"}

    def test_no_tariff_is_409(self, client, operator):
        make_station(operator)
        assert_problem(client.get(QUOTE, {"station_id": "DE*EVP*S1", "connector_id": "1"}), 409, "invalid_state")


@pytest.mark.django_db
def test_admin_creates_tariff_for_own_operator_and_moves_default(operator, other_operator):
    old = make_tariff(operator, name="old")
    user = operator_user_create(operator=operator, username="staff", password="pw-123456", role="admin")
    web = Client()
    web.force_login(user)
    response = web.post(
        "/admin/charging/tariff/add/",
        {
            "name": "new",
            "currency": "EUR",
            "price_per_kwh": "0.5",
            "price_per_minute": "0",
            "session_fee": "0",
            "vat_rate_percent": "19",
            "preauthorize_amount": "5000",
            "is_default": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    new = Tariff.objects.get(name="new")
    assert new.operator == operator and new.is_default
    old.refresh_from_db()
    assert not old.is_default


@pytest.mark.django_db(transaction=True)
def test_open_default_change_does_not_hold_up_inserts_of_the_operator(operator):
    """The operator row serialises default changes. Committing a row of the operator checks its (deferred) foreign
    key with a share lock on that row: it must not wait for a default change that is still open."""
    from terminals.models import Terminal

    with held_open_elsewhere(lambda: make_tariff(operator, name="New default")):
        Terminal.objects.create(operator=operator, serial_number="SN-1")
    assert Terminal.objects.filter(operator=operator).count() == 1
    assert Tariff.objects.get(operator=operator, is_default=True).name == "New default"
