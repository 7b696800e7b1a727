"""evpay against an OCPI 2.2.1 CPO it did not write (extrawest-ocpi, `tests/ocpi_cpo.py`), both ways, through
evpay's public API: the credentials handshake, connector statuses, a full session (one START_SESSION, the
CommandResult, Session updates, the CDR) captured to the right amount, the cost-cap STOP_SESSION with the CPO's
session id, a REJECTED result, a wrong token, the CPO down. Results are checked in the CPO's own store too."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
import requests

from charging.models import ChargeSession
from infrastructure.models import AdapterConfig, OcpiRegistration
from payments.models import PaymentIntent
from tests import ocpi_cpo
from tests.conftest import wait_for
from tests.ocpi_cpo import STORE, location

CONFIG = "/v1/charging-infrastructure/config/ocpi"
MAPPINGS = "/v1/charging-infrastructure/mappings"
CONNECTORS = "/v1/charging-infrastructure/connectors"
START = "/v1/adhoc-charges/start"
SESSIONS = "/v1/adhoc-charges"
STATION = "DE*EVP*OCPI1"
VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def cpo_server():
    server = ocpi_cpo.CpoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cpo(cpo_server, live_server, settings):
    """The CPO, its store fresh; evpay's public URL is the live server the CPO calls back."""
    STORE.reset()
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CPMS_OCPI_RESPONSE_URL = f"{live_server.url}/ocpi/2.2.1/commands"
    STORE.locations["LOC-1"] = location("LOC-1", [("LOC-1-E1", "AVAILABLE", ["1"]), ("LOC-1-E2", "OUTOFORDER", ["2"])])
    STORE.locations["LOC-REJECT"] = location("LOC-REJECT", [("LOC-REJECT-E1", "AVAILABLE", ["1"])])
    STORE.command_results[("START_SESSION", "LOC-REJECT")] = "REJECTED"
    if not cpo_server.server:
        cpo_server.start()
    return cpo_server


def ocpi_config(client) -> dict:
    entries = client.get("/v1/charging-infrastructure/config").json()["results"]
    return next(e for e in entries if e["adapter_type"] == "ocpi")


def register(client):
    token_a = STORE.issue_token_a()
    return client.patch(
        CONFIG,
        {"enabled": True, "base_url": ocpi_cpo.VERSIONS_URL, "credentials": {"token": token_a}, "timeout_ms": 5000},
        format="json",
    )


def token_header(token: str) -> dict:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def our_details_url() -> str:
    """evpay's 2.2.1 version details, as the CPO learnt our versions URL in the handshake."""
    return STORE.registration()["credentials"]["url"].removesuffix("versions") + "2.2.1"


def push(module: str, object_id: str, *, token_b: str | None = None):
    """The CPO pushes one object of its store to evpay's receiver (py_ocpi's HTTP push: version details, then PUT
    a session / POST a CDR)."""
    registration = STORE.registration()
    response = requests.post(
        f"{ocpi_cpo.BASE}/push/2.2.1",
        json={
            "module_id": module,
            "object_id": object_id,
            "receivers": [
                {
                    "endpoints_url": our_details_url(),
                    "auth_token": token_b or registration["client_token"],
                }
            ],
        },
        headers=token_header(registration["token_c"]),
        timeout=20,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["receiver_responses"][0] if "receiver_responses" in body else body


def setup_station(client, tariff_price="0.50", preauthorize_amount=5000, cpms_station_id="LOC-1"):
    response = client.post(
        "/v1/tariffs",
        {
            "name": "OCPI",
            "currency": "EUR",
            "price_per_kwh": tariff_price,
            "price_per_minute": "0",
            "session_fee": "0",
            "vat_rate_percent": "0",
            "preauthorize_amount": preauthorize_amount,
            "is_default": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    connectors = [
        {"connector_id": cid, "evse_uid": f"LOC-1-E{cid}", "standard": "IEC_62196_T2_COMBO", "power_type": "DC"}
        for cid in ("1", "2")
    ]
    response = client.post(
        MAPPINGS,
        {
            "station_id": STATION,
            "adapter_type": "ocpi",
            "cpms_station_id": cpms_station_id,
            "connectors": [{**c, "max_power_kw": 150} for c in connectors],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    terminal = client.post("/v1/terminals", {"serial_number": "SN-OCPI-1"}, format="json").json()
    return terminal["id"]


def connector_statuses(client) -> dict[str, str]:
    return {c["connector_id"]: c["status"] for c in client.get(CONNECTORS).json()["results"]}


def authorized_intent(client, amount=5000) -> str:
    intent = client.post("/v1/payment-intents", {"amount": amount, "currency": "EUR"}, format="json").json()
    assert client.post(f"/v1/payment-intents/{intent['id']}/authorize", VISA, format="json").status_code == 200
    return intent["id"]


def start(client, terminal_id, intent_id, connector_id="1"):
    return client.post(
        START,
        {
            "terminal_id": terminal_id,
            "station_id": STATION,
            "connector_id": connector_id,
            "payment_intent_id": intent_id,
        },
        format="json",
    )


def session_is(client, session_id, status):
    def check():
        body = client.get(f"{SESSIONS}/{session_id}").json()
        return body if body["status"] == status else None

    return wait_for(check, timeout=30, message=f"{session_id} {status}")


def cpo_session(cpo_id: str, command: dict, kwh: float, status: str, *, minutes: int = 10, ended: bool = False):
    """A Session in the CPO's store, for the START_SESSION it received."""
    started = datetime.now(UTC) - timedelta(minutes=minutes)
    stamp = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    STORE.sessions[cpo_id] = {
        "country_code": ocpi_cpo.COUNTRY_CODE,
        "party_id": ocpi_cpo.PARTY_ID,
        "id": cpo_id,
        "start_date_time": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "end_date_time": stamp if ended else None,
        "kwh": kwh,
        "cdr_token": {
            "country_code": command["token"]["country_code"],
            "party_id": command["token"]["party_id"],
            "uid": command["token"]["uid"],
            "type": command["token"]["type"],
            "contract_id": command["token"]["contract_id"],
        },
        "auth_method": "COMMAND",
        "authorization_reference": command["authorization_reference"],
        "location_id": command["location_id"],
        "evse_uid": command["evse_uid"],
        "connector_id": command["connector_id"],
        "currency": "EUR",
        "status": status,
        "last_updated": stamp,
    }


def cpo_cdr(cdr_id: str, session: dict, kwh: float):
    end = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    STORE.cdrs[cdr_id] = {
        "country_code": ocpi_cpo.COUNTRY_CODE,
        "party_id": ocpi_cpo.PARTY_ID,
        "id": cdr_id,
        "start_date_time": session["start_date_time"],
        "end_date_time": end,
        "session_id": session["id"],
        "cdr_token": session["cdr_token"],
        "auth_method": "COMMAND",
        "authorization_reference": session["authorization_reference"],
        "cdr_location": {
            "id": session["location_id"],
            "address": "Hauptstrasse 1",
            "city": "Berlin",
            "country": "DEU",
            "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
            "evse_id": "DE*CPO*E1",
            "connector_id": session["connector_id"],
            "connector_standard": "IEC_62196_T2_COMBO",
            "connector_format": "CABLE",
            "connector_power_type": "DC",
        },
        "currency": "EUR",
        "charging_periods": [],
        "total_cost": {"excl_vat": 1.0},
        "total_energy": kwh,
        "total_time": 0.2,
        "last_updated": end,
    }


class TestRegistration:
    def test_handshake_both_ways_and_a_wrong_token(self, client, cpo, other_client):
        assert ocpi_config(client)["registered"] is False
        # A token A the CPO never issued: refused, nothing registered.
        refused = client.patch(
            CONFIG, {"base_url": ocpi_cpo.VERSIONS_URL, "credentials": {"token": "not-a-token"}}, format="json"
        )
        assert refused.status_code == 400 and refused.json()["code"] == "validation_error"
        assert STORE.registrations == [] and not OcpiRegistration.objects.filter(token_hash__gt="").exists()

        response = register(client)
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["registered"], body["credentials_set"], body["enabled"]) == (True, True, True)
        # The CPO's side: it holds our token B and our versions URL, and found our 2.2.1 endpoints with it.
        registration = STORE.registration()
        assert registration["credentials"]["url"].endswith("/ocpi/versions")
        assert registration["credentials"]["roles"][0]["role"] == "EMSP"
        modules = {(e["identifier"], e["role"]) for e in registration["endpoints"]["endpoints"]}
        assert {("sessions", "RECEIVER"), ("cdrs", "RECEIVER"), ("credentials", "RECEIVER")} <= modules
        # Ours: token B only as a hash, token C encrypted.
        token_b, token_c = registration["client_token"], registration["token_c"]
        stored = OcpiRegistration.objects.get()
        config = AdapterConfig.objects.get(adapter_type="ocpi")
        assert token_b not in stored.token_hash and token_c not in config.credentials_encrypted
        assert config.discovery["endpoints"]["commands"]["RECEIVER"].endswith("/commands/")

        # The CPO reads its credentials at our module with token B (base64 and plain are both accepted).
        for header in (token_header(token_b), {"Authorization": f"Token {token_b}"}):
            answer = requests.get(f"{our_details_url()}/credentials/", headers=header, timeout=10)
            assert answer.status_code == 200 and answer.json()["status_code"] == 1000
            assert answer.json()["data"]["token"] == token_b
        # A wrong token: 401 in the OCPI envelope; another operator's API sees nothing registered.
        wrong = requests.get(registration["credentials"]["url"], headers=token_header("wrong"), timeout=10)
        assert wrong.status_code == 401 and wrong.json()["status_code"] == 2000
        assert ocpi_config(client)["registered"] is True and ocpi_config(other_client)["registered"] is False

        # The handshake as receiver: the CPO updates its credentials at ours (PUT with token B): evpay checks the
        # CPO's versions with the token it is given and answers with a new token B; the old one stops working.
        credentials = f"{our_details_url()}/credentials/"
        update = ocpi_cpo.Crud._credentials(token_c)  # the CPO's own Credentials object
        answer = requests.put(credentials, json=update, headers=token_header(token_b), timeout=20)
        assert answer.status_code == 200 and answer.json()["status_code"] == 1000, answer.text
        new_b = answer.json()["data"]["token"]
        assert new_b != token_b and answer.json()["data"]["url"].endswith("/ocpi/versions")
        assert requests.get(credentials, headers=token_header(token_b), timeout=10).status_code == 401
        assert requests.get(credentials, headers=token_header(new_b), timeout=10).json()["data"]["token"] == new_b
        assert ocpi_config(client)["registered"] is True


class TestSessions:
    def test_statuses_are_imported_and_a_full_session_is_captured(self, client, cpo, celery_worker):
        assert register(client).status_code == 200
        terminal_id = setup_station(client, tariff_price="0.50")
        # The new mapping was fetched at once; the CPO's EVSE statuses (lower-cased ids) are mapped.
        wait_for(lambda: connector_statuses(client) == {"1": "AVAILABLE", "2": "OUTOFORDER"}, message="statuses")

        intent_id = authorized_intent(client)
        response = start(client, terminal_id, intent_id)
        assert response.status_code == 201, response.content
        session_id = response.json()["id"]
        # START_SESSION reached the CPO once; its CommandResult ACCEPTED (posted to our response_url) started it.
        session_is(client, session_id, "charging")
        assert len(STORE.commands_of("START_SESSION")) == 1
        command = STORE.commands_of("START_SESSION")[0]
        assert command["authorization_reference"] == session_id.lower()  # the library lower-cases CiStrings
        assert command["response_url"].endswith(f"/ocpi/2.2.1/commands/START_SESSION/{session_id}")
        assert STORE.command_results_sent == [("START_SESSION", {"result": "ACCEPTED"})]
        assert connector_statuses(client)["1"] == "CHARGING"

        # Session updates (PUT to our Sessions receiver) are progress readings and tell us the CPO's session id.
        cpo_session("CPO-S-1", command, 4.2, "ACTIVE")
        assert push("sessions", "CPO-S-1")["response"]["status_code"] == 1000
        body = client.get(f"{SESSIONS}/{session_id}").json()
        assert (body["energy_wh"], body["cpms_session_id"]) == (4200, "CPO-S-1")
        cpo_session("CPO-S-1", command, 10.0, "COMPLETED", ended=True)
        push("sessions", "CPO-S-1")
        # The CDR completes it: 10.0 kWh * 0.50 = 5.00 EUR, captured.
        cpo_cdr("CDR-1", STORE.sessions["CPO-S-1"], 10.0)
        assert push("cdrs", "CDR-1")["status_code"] == 200
        done = session_is(client, session_id, "completed")
        assert (done["energy_wh"], done["cost"]["total"], done["amount_captured"]) == (10000, 500, 500)
        intent = client.get(f"/v1/payment-intents/{intent_id}").json()
        assert (intent["status"], intent["amount_captured"]) == ("captured", 500)
        assert connector_statuses(client)["1"] == "AVAILABLE"
        # A repeated CDR changes nothing; still one START_SESSION and no STOP_SESSION at the CPO.
        push("cdrs", "CDR-1")
        assert client.get(f"{SESSIONS}/{session_id}").json()["amount_captured"] == 500
        assert len(STORE.commands_of("START_SESSION")) == 1 and STORE.commands_of("STOP_SESSION") == []

    def test_cost_cap_stop_names_the_cpo_session_and_is_accepted(self, client, cpo, celery_worker):
        assert register(client).status_code == 200
        terminal_id = setup_station(client, tariff_price="0.50")
        intent_id = authorized_intent(client, amount=1000)
        session_id = start(client, terminal_id, intent_id).json()["id"]
        session_is(client, session_id, "charging")
        command = STORE.commands_of("START_SESSION")[0]
        # 25 kWh * 0.50 = 12.50 EUR >= the 10.00 EUR hold: stop.
        cpo_session("CPO-S-CAP", command, 25.0, "ACTIVE")
        push("sessions", "CPO-S-CAP")
        stopping = session_is(client, session_id, "stopping")
        assert stopping["stop_reason"] == "cost_cap_reached"
        stops = wait_for(lambda: STORE.commands_of("STOP_SESSION"), message="STOP_SESSION at the CPO")
        assert len(stops) == 1 and stops[0]["session_id"] == "cpo-s-cap"  # the CPO's own id
        assert stops[0]["response_url"].endswith(f"/ocpi/2.2.1/commands/STOP_SESSION/{session_id}")
        wait_for(lambda: ("STOP_SESSION", {"result": "ACCEPTED"}) in STORE.command_results_sent, message="result")
        cpo_session("CPO-S-CAP", command, 25.5, "COMPLETED", ended=True)
        cpo_cdr("CDR-CAP", STORE.sessions["CPO-S-CAP"], 25.5)
        assert push("cdrs", "CDR-CAP")["status_code"] == 200, STORE.cdrs
        done = session_is(client, session_id, "completed")
        assert (done["amount_captured"], done["stop_reason"]) == (1000, "cost_cap_reached")
        assert PaymentIntent.objects.get(pk=intent_id).amount_captured == 1000

    def test_rejected_result_fails_the_session_and_voids(self, client, cpo, celery_worker):
        assert register(client).status_code == 200
        terminal_id = setup_station(client, cpms_station_id="LOC-REJECT")
        intent_id = authorized_intent(client)
        session_id = start(client, terminal_id, intent_id).json()["id"]
        failed = session_is(client, session_id, "failed")
        assert failed["stop_reason"] == "cpms_rejected"
        intent = wait_for(
            lambda: (body := client.get(f"/v1/payment-intents/{intent_id}").json())["status"] == "voided" and body,
            message="intent voided",
        )
        assert intent["void_reason"] == "session_failed" and intent["amount_capturable"] == 0
        assert STORE.command_results_sent == [("START_SESSION", {"result": "REJECTED"})]
        assert len(STORE.commands_of("START_SESSION")) == 1

    def test_wrong_token_and_bad_input_change_nothing(self, client, cpo, celery_worker):
        assert register(client).status_code == 200
        terminal_id = setup_station(client)
        session_id = start(client, terminal_id, authorized_intent(client)).json()["id"]
        session_is(client, session_id, "charging")
        command = STORE.commands_of("START_SESSION")[0]
        cpo_session("CPO-S-W", command, 3.0, "ACTIVE")
        # With a token we never issued the CPO cannot even read our version details (401): its push fails.
        assert push("sessions", "CPO-S-W", token_b="not-our-token")["status_code"] == 3000
        details = our_details_url()
        url = f"{details}/sessions/DE/CPO/CPO-S-W"
        wrong = requests.put(url, json=STORE.sessions["CPO-S-W"], headers=token_header("not-our-token"), timeout=10)
        assert wrong.status_code == 401 and wrong.json()["status_code"] == 2000
        header = token_header(STORE.registration()["client_token"])
        for body in ("{", '{"id": "CPO-S-W", "kwh": "lots"}', "[]", '{"id": "CPO-S-W", "kwh": -1}'):
            answer = requests.put(url, data=body, headers={**header, "Content-Type": "application/json"}, timeout=10)
            assert answer.status_code == 400 and answer.json()["status_code"] == 2001, answer.text
        unknown = dict(STORE.sessions["CPO-S-W"], authorization_reference="chs_unknown", id="CPO-S-X")
        answer = requests.put(f"{details}/sessions/DE/CPO/CPO-S-X", json=unknown, headers=header, timeout=10)
        assert answer.status_code == 404 and answer.json()["status_code"] == 2004
        body = client.get(f"{SESSIONS}/{session_id}").json()
        assert (body["energy_wh"], body["cpms_session_id"]) == (0, None)


class TestCpoDown:
    def test_start_is_refused_with_503_and_nothing_is_held(self, client, cpo, settings):
        settings.CPMS_CIRCUIT_FAILURE_THRESHOLD = 2
        assert register(client).status_code == 200
        terminal_id = setup_station(client)
        client.patch(CONFIG, {"max_retries": 0}, format="json")
        cpo.stop()
        # The CPO does not answer: the health probe's pings fail and open the circuit.
        from infrastructure.services import adapter_health_probe

        for _ in range(2):
            adapter_health_probe(config=AdapterConfig.objects.get(adapter_type="ocpi"))
        health = client.get("/v1/charging-infrastructure/adapters/health").json()["results"]
        assert {h["adapter_type"]: h["circuit"] for h in health}["ocpi"] == "open"
        intent_id = authorized_intent(client)
        response = start(client, terminal_id, intent_id)
        assert response.status_code == 503 and response.json()["code"] == "cpms_unavailable"
        assert not ChargeSession.objects.exists()
        assert client.get(f"/v1/payment-intents/{intent_id}").json()["status"] == "authorized"
        assert STORE.commands == []
