"""The `ocpi` adapter against a real (small) OCPI 2.2.1 CPO server on 127.0.0.1."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from infrastructure.adapters.base import AdapterUnavailable, CommandOutcome
from infrastructure.models import AdapterCall, AdapterConfig, Connector
from infrastructure.services import (
    adapter_config_update,
    adapter_for_mapping,
    adapter_poll,
    mapping_connectivity_test_run,
)
from tests.infrastructure_support import CCS, TYPE2, make_mapping
from webhooks.models import Event

TOKEN = "cpo-issued-token-123"
PAGE_SIZE = 2


def envelope(data, status_code=1000, message="Success"):
    return {"data": data, "status_code": status_code, "status_message": message, "timestamp": "2026-11-24T00:00:00Z"}


def location(location_id, evses):
    return {
        "id": location_id,
        "country_code": "DE",
        "party_id": "CPO",
        "publish": True,
        "evses": [
            {
                "uid": uid,
                "status": status,
                "last_updated": "2026-11-24T00:00:00Z",
                "connectors": [
                    {"id": cid, "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC"}
                    for cid in connector_ids
                ],
            }
            for uid, status, connector_ids in evses
        ],
    }


class FakeCpo:
    """Versions, version details, Locations (paginated, Link rel=next) and Commands of a CPO."""

    def __init__(self):
        self.locations = [location(f"LOC-{i}", [(f"LOC-{i}-E1", "AVAILABLE", ["1"])]) for i in range(1, 5)]
        self.requests: list[tuple[str, str, dict | None, str | None]] = []
        self.delay = 0.0
        self.fail_with: int | None = None
        self.answer_with: dict | None = None  # 200 with this body to every request
        self.locations_path = "/ocpi/2.2.1/locations"  # where the Locations module lives (it can move)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self):
        cpo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                cpo.requests.append((method, self.path, body, self.headers.get("Authorization")))
                if cpo.delay:
                    time.sleep(cpo.delay)
                if cpo.fail_with:
                    return self._send(cpo.fail_with, {"error": "boom"})
                if cpo.answer_with is not None:
                    return self._send(200, cpo.answer_with)
                if self.headers.get("Authorization") != "Token " + base64.b64encode(TOKEN.encode()).decode():
                    return self._send(401, envelope(None, 2000, "Unauthorized"))
                url = urlparse(self.path)
                path = url.path
                if path == "/ocpi/versions":
                    return self._send(
                        200,
                        envelope(
                            [
                                {"version": "2.1.1", "url": cpo.url + "/ocpi/2.1.1"},
                                {"version": "2.2.1", "url": cpo.url + "/ocpi/2.2.1"},
                            ]
                        ),
                    )
                if path == "/ocpi/2.2.1":
                    return self._send(
                        200,
                        envelope(
                            {
                                "version": "2.2.1",
                                "endpoints": [
                                    {
                                        "identifier": "locations",
                                        "role": "SENDER",
                                        "url": cpo.url + cpo.locations_path,
                                    },
                                    {
                                        "identifier": "commands",
                                        "role": "RECEIVER",
                                        "url": cpo.url + "/ocpi/2.2.1/commands",
                                    },
                                ],
                            }
                        ),
                    )
                if path == cpo.locations_path:
                    offset = int(parse_qs(url.query).get("offset", ["0"])[0])
                    page = cpo.locations[offset : offset + PAGE_SIZE]
                    headers = {"X-Total-Count": str(len(cpo.locations)), "X-Limit": str(PAGE_SIZE)}
                    if offset + PAGE_SIZE < len(cpo.locations):
                        headers["Link"] = (
                            f'<{cpo.url}{cpo.locations_path}?offset={offset + PAGE_SIZE}&limit={PAGE_SIZE}>; rel="next"'
                        )
                    return self._send(200, envelope(page), headers)
                if path.startswith(cpo.locations_path + "/"):
                    wanted = path.rsplit("/", 1)[1]
                    found = next((loc for loc in cpo.locations if loc["id"] == wanted), None)
                    if found is None:
                        return self._send(404, envelope(None, 2003, "Unknown Location"))
                    return self._send(200, envelope(found))
                if path == "/ocpi/2.2.1/commands/START_SESSION":
                    result = "REJECTED" if body["location_id"] == "LOC-REJECT" else "ACCEPTED"
                    return self._send(200, envelope({"result": result, "timeout": 30}))
                if path == "/ocpi/2.2.1/commands/STOP_SESSION":
                    return self._send(200, envelope({"result": "ACCEPTED", "timeout": 30}))
                return self._send(404, envelope(None, 2000, "Not found"))

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        return Handler

    def paths(self, method=None):
        return [p for m, p, _, _ in self.requests if method is None or m == method]


@pytest.fixture
def cpo():
    server = FakeCpo()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def configure(operator, base_url, **overrides):
    fields = {
        "enabled": True,
        "base_url": base_url + "/ocpi/versions",
        "credentials": {"token": TOKEN},
        "timeout_ms": 2000,
        "max_retries": 0,
        **overrides,
    }
    return adapter_config_update(operator=operator, adapter_type="ocpi", **fields)


def ocpi_mapping(operator, station="LOC-1", connectors=(CCS,)):
    return make_mapping(
        operator,
        station_id=f"DE*ABC*{station}",
        adapter_type="ocpi",
        cpms_station_id=station,
        connectors=[{**c, "evse_uid": f"{station}-E1"} for c in connectors],
    )


@pytest.mark.django_db
class TestOcpiAdapter:
    def test_statuses_from_paginated_locations(self, operator, cpo):
        configure(operator, cpo.url)
        cpo.locations[2] = location("LOC-3", [("LOC-3-E1", "CHARGING", ["1"]), ("LOC-3-E2", "OUTOFORDER", ["2"])])
        ocpi_mapping(operator, "LOC-1")
        ocpi_mapping(operator, "LOC-3", connectors=(CCS, TYPE2))
        config = configure(operator, cpo.url)
        assert adapter_poll(config=config) == 3
        states = {
            (c.mapping.cpms_station_id, c.connector_id): c.status for c in Connector.objects.select_related("mapping")
        }
        assert states == {("LOC-1", "1"): "AVAILABLE", ("LOC-3", "1"): "CHARGING", ("LOC-3", "2"): "OUTOFORDER"}
        assert cpo.paths("GET").count("/ocpi/2.2.1/locations?limit=100") == 1
        assert "/ocpi/2.2.1/locations?offset=2&limit=2" in cpo.paths("GET")
        assert Event.objects.filter(type="infrastructure.connector_status_changed").count() == 3
        cpo.locations[0] = location("LOC-1", [("LOC-1-E1", "BLOCKED", ["1"])])
        assert adapter_poll(config=config) == 1

    def test_start_and_stop_commands(self, operator, cpo):
        configure(operator, cpo.url)
        adapter = adapter_for_mapping(ocpi_mapping(operator, "LOC-1"))
        result = adapter.start_session(connector_id="1", evse_uid="LOC-1-E1", session_id="chs_abc")
        # ACCEPTED by the CPO: forwarded to the charger, whose result comes later; the CPO's session id too.
        assert result.outcome is CommandOutcome.SENT and result.cpms_session_id is None
        method, path, body, auth = cpo.requests[-1]
        assert (method, path) == ("POST", "/ocpi/2.2.1/commands/START_SESSION")
        assert auth == "Token " + base64.b64encode(TOKEN.encode()).decode()
        assert (body["location_id"], body["evse_uid"], body["connector_id"]) == ("LOC-1", "LOC-1-E1", "1")
        assert body["authorization_reference"] == "chs_abc" and body["token"]["type"] == "AD_HOC_USER"
        assert body["response_url"].endswith("/START_SESSION/chs_abc")
        stop = adapter.stop_session(cpms_session_id="CPO-SESSION-9", session_id="chs_abc")
        assert stop.accepted
        assert cpo.requests[-1][2]["session_id"] == "CPO-SESSION-9"

    def test_rejected_start(self, operator, cpo):
        configure(operator, cpo.url)
        adapter = adapter_for_mapping(ocpi_mapping(operator, "LOC-REJECT"))
        result = adapter.start_session(connector_id="1", session_id="chs_abc")
        assert result.outcome is CommandOutcome.REJECTED and "REJECTED" in result.message
        assert AdapterCall.objects.get(operation="start_session").outcome == "rejected"

    def test_connectivity_test_known_and_unknown_location(self, operator, cpo):
        configure(operator, cpo.url)
        ok = mapping_connectivity_test_run(mapping=ocpi_mapping(operator, "LOC-2"))
        assert ok.connectivity_test_status == "succeeded" and ok.connectivity_test_latency_ms >= 0
        unknown = mapping_connectivity_test_run(mapping=ocpi_mapping(operator, "LOC-404"))
        assert unknown.connectivity_test_status == "failed"
        assert "does not know location LOC-404" in unknown.connectivity_test_error

    def test_wrong_token_fails_without_showing_it(self, operator, cpo):
        configure(operator, cpo.url, credentials={"token": "wrong"})
        mapping = mapping_connectivity_test_run(mapping=ocpi_mapping(operator, "LOC-1"))
        assert mapping.connectivity_test_status == "failed"
        assert "401" in mapping.connectivity_test_error and "wrong" not in mapping.connectivity_test_error
        assert AdapterCall.objects.get(operation="ping").outcome == "failure"

    @pytest.mark.parametrize(
        "answer",
        [
            envelope(["2.2.1"]),  # versions that are not objects
            envelope([{"version": "2.2.1"}]),  # a version without its url
            {"status_code": "OK", "data": []},  # a status_code that is no number
        ],
    )
    def test_malformed_answers_are_cpms_failures(self, operator, cpo, answer):
        configure(operator, cpo.url)
        mapping = ocpi_mapping(operator, "LOC-1")
        cpo.answer_with = answer
        tested = mapping_connectivity_test_run(mapping=mapping)
        assert tested.connectivity_test_status == "failed" and tested.connectivity_test_error.startswith("failure:")
        with pytest.raises(AdapterUnavailable) as raised:
            adapter_for_mapping(mapping).start_session(connector_id="1", session_id="chs_abc")
        assert raised.value.reason == "failure"
        assert adapter_poll(config=AdapterConfig.objects.get(operator=operator, adapter_type="ocpi")) == 0
        assert {(c.operation, c.outcome) for c in AdapterCall.objects.all()} == {
            ("ping", "failure"),
            ("start_session", "failure"),
            ("fetch_connector_statuses", "failure"),
        }

    def test_server_errors_are_retried_for_reads_not_for_commands(self, operator, cpo, settings):
        settings.CPMS_RETRY_BACKOFF = 0
        configure(operator, cpo.url, max_retries=2)
        adapter = adapter_for_mapping(ocpi_mapping(operator, "LOC-1"))
        cpo.fail_with = 500
        with pytest.raises(AdapterUnavailable):
            adapter.fetch_connector_statuses()
        assert len(cpo.requests) == 3
        cpo.requests.clear()
        with pytest.raises(AdapterUnavailable):
            adapter.start_session(connector_id="1", session_id="chs_abc")
        assert len(cpo.requests) == 1

    def test_timeout_of_a_command(self, operator, cpo):
        configure(operator, cpo.url, timeout_ms=200, max_retries=3)
        adapter = adapter_for_mapping(ocpi_mapping(operator, "LOC-1"))
        cpo.delay = 0.6
        result = adapter.start_session(connector_id="1", session_id="chs_abc")
        assert result.outcome is CommandOutcome.TIMEOUT
        assert len(cpo.requests) == 1  # the versions request timed out; no command was retried
        assert AdapterCall.objects.get(operation="start_session").outcome == "timeout"

    def test_refused_connection_is_retried_even_for_commands(self, operator, cpo, settings):
        settings.CPMS_RETRY_BACKOFF = 0
        closed = cpo.url
        cpo.server.shutdown()
        cpo.server.server_close()
        configure(operator, closed, max_retries=2)
        adapter = adapter_for_mapping(ocpi_mapping(operator, "LOC-1"))
        with pytest.raises(AdapterUnavailable):
            adapter.start_session(connector_id="1", session_id="chs_abc")
        assert AdapterCall.objects.filter(operation="start_session", outcome="failure").count() == 3


@pytest.mark.django_db
class TestOcpiDiscovery:
    """What the extrawest CPO does not show: how often evpay asks for the versions, a module that moved."""

    def test_discovery_is_cached_and_refreshed_when_a_module_answers_404(self, operator, cpo):
        config = configure(operator, cpo.url)
        ocpi_mapping(operator, "LOC-1")
        for _ in range(3):
            adapter_poll(config=config)
        adapter_for_mapping(ocpi_mapping(operator, "LOC-2")).start_session(connector_id="1", session_id="chs_x")
        assert cpo.paths("GET").count("/ocpi/versions") == 1  # 4 calls, one discovery
        # The CPO moves its Locations module: the old URL answers 404; evpay discovers again and follows it.
        cpo.locations_path = "/ocpi/2.2.1/v2/locations"
        cpo.locations[0] = location("LOC-1", [("LOC-1-E1", "BLOCKED", ["1"])])
        assert adapter_poll(config=config) == 2  # LOC-1 blocked; LOC-2 (mapped since) seen for the first time
        assert cpo.paths("GET").count("/ocpi/versions") == 2
        assert (
            AdapterConfig.objects.get(pk=config.pk)
            .discovery["endpoints"]["locations"]["SENDER"]
            .endswith("/v2/locations")
        )
        assert not AdapterCall.objects.filter(outcome="failure").exists()

    def test_unknown_location_is_an_answer_not_a_failure(self, operator, cpo):
        configure(operator, cpo.url)
        tested = mapping_connectivity_test_run(mapping=ocpi_mapping(operator, "LOC-404"))
        assert tested.connectivity_test_status == "failed"
        config = AdapterConfig.objects.get(operator=operator, adapter_type="ocpi")
        assert (config.consecutive_failures, AdapterCall.objects.get(operation="ping").outcome) == (0, "rejected")

    def test_ids_match_without_regard_to_case(self, operator, cpo):
        cpo.locations[0] = location("loc-1", [("loc-1-e1", "CHARGING", ["1"])])
        config = configure(operator, cpo.url)
        ocpi_mapping(operator, "LOC-1")
        assert adapter_poll(config=config) == 1
        assert Connector.objects.get().status == "CHARGING"
