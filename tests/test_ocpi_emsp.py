"""evpay's OCPI endpoints as a CPO's client sees them (no CPO needed): every endpoint needs a registered CPO's
token and acts only on that CPO's operator; bad input is an OCPI 2001, never a 500, and changes nothing."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from charging.models import ChargeSession
from infrastructure.emsp.services import ocpi_token_hash
from infrastructure.models import OcpiRegistration
from infrastructure.services import adapter_config_ensure
from tests.charging_support import make_station, make_tariff, start_session

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/ocpi/versions"),
    ("get", "/ocpi/2.2.1"),
    ("get", "/ocpi/2.2.1/credentials/"),
    ("post", "/ocpi/2.2.1/commands/START_SESSION/chs_x"),
    ("put", "/ocpi/2.2.1/sessions/DE/CPO/S1"),
    ("patch", "/ocpi/2.2.1/sessions/DE/CPO/S1"),
    ("post", "/ocpi/2.2.1/cdrs/"),
]


def register(operator, token, *, registered=True):
    config = adapter_config_ensure(operator_id=operator.pk, adapter_type="ocpi")
    return OcpiRegistration.objects.create(
        config=config,
        operator=operator,
        token_hash=ocpi_token_hash(token) if registered else "",
        pending_token_hash="" if registered else ocpi_token_hash(token),
        cpo_country_code="DE",
        cpo_party_id="CPO",
        registered_at=timezone.now() if registered else None,
    )


def call(method, path, token=None, body=None, plain=False):
    headers = {}
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = "Token " + (token if plain else base64.b64encode(token.encode()).decode())
    if method == "get":
        return Client().get(path, **headers)
    data = body if isinstance(body, str | bytes) else json.dumps(body if body is not None else {})
    return getattr(Client(), method)(path, data=data, content_type="application/json", **headers)


def now(seconds=0):
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_every_endpoint_needs_a_registered_token(operator, method, path):
    register(operator, "token-b")
    for token in (None, "wrong", ""):
        response = call(method, path, token)
        assert response.status_code == 401 and response.json()["status_code"] == 2000
        assert set(response.json()) == {"data", "status_code", "status_message", "timestamp"}
    assert call(method, path, "token-b").status_code != 401
    assert call(method, path, "token-b", plain=True).status_code != 401  # the plain token works too


def test_a_handshake_token_opens_only_versions_details_and_credentials(operator):
    register(operator, "pending-b", registered=False)
    for method, path in ENDPOINTS:
        status = call(method, path, "pending-b").status_code
        assert (status != 401) == (path in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials/")), path


def test_versions_and_details(operator, settings):
    settings.PUBLIC_BASE_URL = "https://evpay.example.com"
    register(operator, "token-b")
    versions = call("get", "/ocpi/versions", "token-b").json()
    assert versions["status_code"] == 1000
    assert versions["data"] == [{"version": "2.2.1", "url": "https://evpay.example.com/ocpi/2.2.1"}]
    details = call("get", "/ocpi/2.2.1", "token-b").json()["data"]
    assert {(e["identifier"], e["role"]) for e in details["endpoints"]} >= {
        ("credentials", "RECEIVER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
        ("commands", "SENDER"),
    }
    assert call("get", "/ocpi/nothing", "token-b").json()["status_code"] == 2000


class TestReceivers:
    @pytest.fixture
    def session(self, operator):
        register(operator, "token-b")
        make_tariff(operator)
        make_station(operator)
        session = start_session(operator)
        ChargeSession.objects.filter(pk=session.pk).update(created_at=timezone.now() - timedelta(hours=1))
        return session

    def session_body(self, session, **changes):
        return {
            "id": "S1",
            "kwh": 1.5,
            "status": "ACTIVE",
            "start_date_time": now(),
            "last_updated": now(),
            "authorization_reference": session.pk.lower(),
            **changes,
        }

    @pytest.mark.parametrize(
        "body",
        [
            "{",
            "[]",
            "null",
            '{"kwh": NaN}',
            "[" * 5000 + "]" * 5000,
            {"id": "OTHER"},
            {"kwh": "lots"},
            {"kwh": -1},
            {"kwh": True},
            {"status": "CHARGING"},
            {"last_updated": "yesterday"},
            {"last_updated": "1999-01-01T00:00:00Z"},
            {"last_updated": "2999-01-01T00:00:00Z"},
            {"authorization_reference": 5},
        ],
    )
    def test_bad_session_input_is_2001_and_changes_nothing(self, session, body):
        if isinstance(body, dict):
            body = self.session_body(session, **body)
        response = call("put", "/ocpi/2.2.1/sessions/DE/CPO/S1", "token-b", body)
        assert response.status_code == 400 and response.json()["status_code"] == 2001, response.content
        session.refresh_from_db()
        assert (session.status, session.energy_wh, session.cpms_session_id) == ("pending", 0, None)

    def test_a_session_update_is_a_progress_reading(self, session):
        response = call("put", "/ocpi/2.2.1/sessions/de/cpo/S1", "token-b", self.session_body(session))
        assert response.status_code == 200 and response.json()["status_code"] == 1000
        session.refresh_from_db()
        assert (session.status, session.energy_wh, session.cpms_session_id) == ("charging", 1500, "S1")
        # A PATCH names the session by the CPO's id (no authorization_reference needed).
        patch = call(
            "patch", "/ocpi/2.2.1/sessions/DE/CPO/S1", "token-b", {"kwh": 2.25, "last_updated": now(seconds=2)}
        )
        assert patch.json()["status_code"] == 1000
        session.refresh_from_db()
        assert session.energy_wh == 2250

    def test_another_party_or_operator_cannot_touch_the_session(self, session, other_operator):
        assert call("put", "/ocpi/2.2.1/sessions/NL/XYZ/S1", "token-b", self.session_body(session)).status_code == 400
        register(other_operator, "other-b")
        response = call("put", "/ocpi/2.2.1/sessions/DE/CPO/S1", "other-b", self.session_body(session))
        assert response.status_code == 404 and response.json()["status_code"] == 2004
        response = call("post", f"/ocpi/2.2.1/commands/START_SESSION/{session.pk}", "other-b", {"result": "ACCEPTED"})
        assert response.json()["status_code"] == 2004
        session.refresh_from_db()
        assert (session.status, session.energy_wh) == ("pending", 0)

    @pytest.mark.parametrize("result,status", [("ACCEPTED", "charging"), ("EVSE_OCCUPIED", "failed")])
    def test_command_results(self, session, result, status):
        path = f"/ocpi/2.2.1/commands/START_SESSION/{session.pk.lower()}"
        for bad in ({"result": "MAYBE"}, {}, "{"):
            assert call("post", path, "token-b", bad).json()["status_code"] == 2001
        assert call("post", path, "token-b", {"result": result, "message": []}).json()["status_code"] == 1000
        session.refresh_from_db()
        assert session.status == status
        assert call("post", "/ocpi/2.2.1/commands/RESERVE_NOW/x", "token-b", {"result": "ACCEPTED"}).status_code == 400

    def test_a_cdr_completes_the_session(self, session):
        body = {
            "id": "CDR-1",
            "session_id": "S1",
            "authorization_reference": session.pk,
            "total_energy": 4.0,
            "start_date_time": now(),
            "end_date_time": now(),
            "last_updated": now(),
        }
        assert call("post", "/ocpi/2.2.1/cdrs", "token-b", {**body, "total_energy": None}).status_code == 400
        assert call("post", "/ocpi/2.2.1/cdrs", "token-b", body).json()["status_code"] == 1000
        session.refresh_from_db()
        assert (session.status, session.energy_wh) == ("completed", 4000)
        assert session.amount_captured == session.cost_total > 0
        assert call("post", "/ocpi/2.2.1/cdrs/", "token-b", body).json()["status_code"] == 1000  # a repeat
