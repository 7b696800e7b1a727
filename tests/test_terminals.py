"""Terminals API: registration, reads and filters, health events, operator status changes."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from terminals.models import Terminal, TerminalHealthEvent
from tests.base import EndpointAccessTests, assert_problem
from webhooks.models import Event

URL = "/v1/terminals"
LOCATION = {
    "address": "Hauptstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "latitude": 52.52,
    "longitude": 13.405,
}


def register(client, **body):
    body = {
        "serial_number": "SN-0001",
        "vendor": "Ingenico",
        "model": "Self 2000",
        "firmware_version": "1.2.3",
        "station_id": "ST-1",
        "location": LOCATION,
        "capabilities": ["CHIP_CARD_SUPPORT", "PED_TERMINAL"],
        "metadata": {"bay": "3"},
        **body,
    }
    return client.post(URL, body, format="json")


def registered(client, **body) -> dict:
    response = register(client, **body)
    assert response.status_code == 201, response.content
    return response.json()


def now_iso(delta: timedelta = timedelta()) -> str:
    return (timezone.now() + delta).isoformat().replace("+00:00", "Z")


def report(client, terminal_id, type_, **body):
    return client.post(
        f"{URL}/{terminal_id}/health-events", {"type": type_, "occurred_at": now_iso(), **body}, format="json"
    )


def status_events(terminal_id):
    return list(
        Event.objects.filter(type="terminal.status_changed", data__object__id=terminal_id).order_by("created_at")
    )


class TestTerminalAccess(EndpointAccessTests):
    scope_resource = "terminals"
    endpoints = [
        ("POST", URL, {"serial_number": "SN-X"}),
        ("GET", URL, None),
        ("GET", URL + "/stats", None),
        ("GET", URL + "/{id}", None),
        ("POST", URL + "/{id}/health-events", {"type": "heartbeat", "occurred_at": "2026-11-23T10:00:00Z"}),
        ("PUT", URL + "/{id}/status", {"status": "maintenance"}),
    ]

    def make_object(self, operator):
        return Terminal.objects.create(operator=operator, serial_number="SN-ACCESS")


@pytest.mark.django_db
class TestRegister:
    def test_registers_offline_with_event(self, client, operator):
        body = registered(client)
        assert body["id"].startswith("trm_") and body["object"] == "terminal"
        assert body["status"] == "offline" and body["last_seen_at"] is None
        assert body["location"] == LOCATION
        assert body["capabilities"] == ["CHIP_CARD_SUPPORT", "PED_TERMINAL"]
        assert (body["serial_number"], body["vendor"], body["model"], body["firmware_version"], body["station_id"]) == (
            "SN-0001",
            "Ingenico",
            "Self 2000",
            "1.2.3",
            "ST-1",
        )
        assert body["health"] == {
            "last_event_type": None,
            "last_error_code": None,
            "signal_strength_dbm": None,
            "temperature_c": None,
            "errors_24h": 0,
        }
        assert body["metadata"] == {"bay": "3"} and body["created_at"].endswith("Z")
        event = Event.objects.get(type="terminal.registered")
        assert event.data["object"] == body and event.operator_id == operator.pk

    def test_minimal_body(self, client):
        body = client.post(URL, {"serial_number": "SN-MIN"}, format="json").json()
        assert (body["location"], body["capabilities"], body["station_id"], body["vendor"]) == (None, [], None, "")

    def test_duplicate_serial_is_409_per_operator(self, client, other_client):
        registered(client)
        body = assert_problem(register(client, vendor="Other"), 409, "terminal_exists")
        assert "SN-0001" in body["detail"]
        assert Terminal.objects.count() == 1
        assert Event.objects.filter(type="terminal.registered").count() == 1
        # Another operator may own the same serial.
        assert register(other_client).status_code == 201

    @pytest.mark.parametrize("country", ["XX", "de", "DEU", "Germany", "", 49])
    def test_bad_country_is_400(self, client, country):
        body = assert_problem(register(client, location={**LOCATION, "country": country}), 400, "validation_error")
        assert "country" in body["errors"]["location"]
        assert not Terminal.objects.exists()

    @pytest.mark.parametrize(
        "capabilities", [["NFC"], ["CHIP_CARD_SUPPORT", "chip_card_support"], "PED_TERMINAL", [None]]
    )
    def test_bad_capability_is_400(self, client, capabilities):
        body = assert_problem(register(client, capabilities=capabilities), 400, "validation_error")
        assert "capabilities" in body["errors"]
        assert not Terminal.objects.exists()

    def test_partial_location(self, client):
        body = registered(client, location={"country": "FR", "city": "Lyon"})
        assert body["location"] == {
            "address": None,
            "city": "Lyon",
            "postal_code": None,
            "country": "FR",
            "latitude": None,
            "longitude": None,
        }

    def test_idempotent_replay(self, client):
        first = client.post(URL, {"serial_number": "SN-IDEM"}, format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
        again = client.post(URL, {"serial_number": "SN-IDEM"}, format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
        assert Terminal.objects.count() == 1
        other = client.post(URL, {"serial_number": "SN-OTHER"}, format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
        assert_problem(other, 422, "idempotency_key_reused")

    def test_repeated_capability_counts_once(self, client):
        body = registered(client, capabilities=["PED_TERMINAL", "PED_TERMINAL"])
        assert body["capabilities"] == ["PED_TERMINAL"]

    @pytest.mark.parametrize(
        "field,value",
        [
            ("serial_number", ""),
            ("serial_number", None),
            ("serial_number", "x" * 101),
            ("location", {**LOCATION, "latitude": 91}),
            ("location", {**LOCATION, "longitude": "east"}),
            ("location", "Berlin"),
            ("metadata", ["a"]),
        ],
    )
    def test_bad_fields_are_400(self, client, field, value):
        body = assert_problem(register(client, **{field: value}), 400, "validation_error")
        assert field in body["errors"]

    def test_read_only_fields_are_ignored(self, client, operator, other_operator):
        body = registered(
            client,
            status="online",
            last_seen_at=now_iso(),
            id="trm_mine",
            operator=other_operator.pk,
            health={"errors_24h": 9},
        )
        assert (body["status"], body["last_seen_at"], body["health"]["errors_24h"]) == ("offline", None, 0)
        assert body["id"] != "trm_mine"
        assert Terminal.objects.get(pk=body["id"]).operator == operator


@pytest.mark.django_db
class TestRead:
    def test_get(self, client):
        terminal = registered(client)
        response = client.get(f"{URL}/{terminal['id']}")
        assert response.status_code == 200 and response.json() == terminal

    def test_unknown_id_is_404(self, client):
        assert_problem(client.get(f"{URL}/trm_doesnotexist"), 404, "not_found")

    def test_list_newest_first_and_operator_scoped(self, client, other_client):
        first, second = registered(client, serial_number="A"), registered(client, serial_number="B")
        registered(other_client, serial_number="C")
        page = client.get(URL).json()
        assert [t["id"] for t in page["results"]] == [second["id"], first["id"]]
        assert page["next"] is None

    def test_filters(self, client):
        a = registered(client, serial_number="ABC-100", vendor="Ingenico", model="Self 2000", station_id="ST-1")
        b = registered(client, serial_number="XYZ-200", vendor="Verifone", model="UX700", station_id="ST-2")
        c = registered(client, serial_number="abc-300", vendor="Verifone", model="UX410", station_id=None)
        report(client, a["id"], "heartbeat")
        report(client, b["id"], "heartbeat", occurred_at=now_iso(-timedelta(hours=2)))

        def ids(**params):
            response = client.get(URL, params)
            assert response.status_code == 200, response.content
            return {t["id"] for t in response.json()["results"]}

        assert ids(status="online") == {a["id"], b["id"]} and ids(status="offline") == {c["id"]}
        assert ids(vendor="Verifone") == {b["id"], c["id"]}
        assert ids(model="UX700") == {b["id"]}
        assert ids(station_id="ST-1") == {a["id"]}
        assert ids(q="abc") == {a["id"], c["id"]} and ids(q="200") == {b["id"]}
        assert ids(last_seen_before=now_iso(-timedelta(hours=1))) == {b["id"]}
        assert ids(vendor="Verifone", model="UX410") == {c["id"]}

    @pytest.mark.parametrize("params", [{"status": "broken"}, {"last_seen_before": "yesterday"}, {"limit": 0}])
    def test_bad_filter_is_400(self, client, params):
        assert_problem(client.get(URL, params), 400, "validation_error")


@pytest.mark.django_db
class TestHealthEvents:
    def test_heartbeat_brings_offline_terminal_online(self, client):
        terminal = registered(client)
        occurred_at = now_iso(-timedelta(seconds=5))
        response = client.post(
            f"{URL}/{terminal['id']}/health-events",
            {
                "type": "heartbeat",
                "occurred_at": occurred_at,
                "metrics": {"signal_strength_dbm": -67, "temperature_c": 41.5, "uptime_s": 3600, "extra": 1},
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        event = response.json()
        assert event["id"].startswith("the_") and event["object"] == "terminal_health_event"
        assert (event["terminal_id"], event["type"]) == (terminal["id"], "heartbeat")
        assert event["metrics"] == {"signal_strength_dbm": -67, "temperature_c": 41.5, "uptime_s": 3600}
        now = client.get(f"{URL}/{terminal['id']}").json()
        assert now["status"] == "online"
        assert (
            parse_datetime(now["last_seen_at"]) == parse_datetime(occurred_at) == parse_datetime(event["occurred_at"])
        )
        assert now["health"] == {
            "last_event_type": "heartbeat",
            "last_error_code": None,
            "signal_strength_dbm": -67,
            "temperature_c": 41.5,
            "errors_24h": 0,
        }
        [changed] = status_events(terminal["id"])
        assert changed.data["previous_status"] == "offline" and changed.data["object"]["status"] == "online"

    def test_error_faults_and_recovered_clears(self, client):
        terminal = registered(client)
        report(client, terminal["id"], "heartbeat")
        assert report(client, terminal["id"], "error", code="PINPAD_FAIL", message="no PIN pad").status_code == 201
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert (body["status"], body["health"]["last_error_code"], body["health"]["errors_24h"]) == (
            "faulted",
            "PINPAD_FAIL",
            1,
        )
        assert "PINPAD_FAIL" in body["status_reason"]
        report(client, terminal["id"], "heartbeat")  # a heartbeat does not clear a fault
        assert client.get(f"{URL}/{terminal['id']}").json()["status"] == "faulted"
        report(client, terminal["id"], "error", code="PINPAD_FAIL")
        assert client.get(f"{URL}/{terminal['id']}").json()["health"]["errors_24h"] == 2
        report(client, terminal["id"], "recovered")
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert body["status"] == "online" and body["health"]["last_event_type"] == "recovered"
        assert [(e.data["previous_status"], e.data["object"]["status"]) for e in status_events(terminal["id"])] == [
            ("offline", "online"),
            ("online", "faulted"),
            ("faulted", "online"),
        ]

    def test_tamper_faults(self, client):
        terminal = registered(client)
        report(client, terminal["id"], "tamper", code="CASE_OPENED")
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert (body["status"], body["health"]["last_error_code"]) == ("faulted", "CASE_OPENED")

    @pytest.mark.parametrize("start", ["online", "offline", "faulted"])
    def test_warning_changes_no_status(self, client, start):
        terminal = registered(client)
        Terminal.objects.filter(pk=terminal["id"]).update(status=start)
        assert report(client, terminal["id"], "warning", code="LOW_PAPER").status_code == 201
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert body["status"] == start and body["health"]["last_event_type"] == "warning"
        assert body["last_seen_at"] is not None
        assert status_events(terminal["id"]) == []

    @pytest.mark.parametrize("held", ["maintenance", "decommissioned"])
    @pytest.mark.parametrize("type_", ["heartbeat", "error", "tamper", "recovered", "reboot"])
    def test_held_statuses_record_but_keep_status(self, client, held, type_):
        terminal = registered(client)
        Terminal.objects.filter(pk=terminal["id"]).update(status=held)
        assert report(client, terminal["id"], type_, code="E1").status_code == 201
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert body["status"] == held and body["last_seen_at"] is not None
        assert TerminalHealthEvent.objects.filter(terminal_id=terminal["id"]).count() == 1
        assert status_events(terminal["id"]) == []

    def test_older_event_is_stored_but_moves_nothing(self, client):
        terminal = registered(client)
        report(client, terminal["id"], "heartbeat")
        seen = client.get(f"{URL}/{terminal['id']}").json()["last_seen_at"]
        late = client.post(
            f"{URL}/{terminal['id']}/health-events",
            {"type": "error", "occurred_at": now_iso(-timedelta(minutes=10)), "code": "OLD"},
            format="json",
        )
        assert late.status_code == 201
        body = client.get(f"{URL}/{terminal['id']}").json()
        assert (body["status"], body["last_seen_at"], body["health"]["errors_24h"]) == ("online", seen, 1)

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"type": "explosion", "occurred_at": "2026-11-23T10:00:00Z"}, "type"),
            ({"type": "heartbeat"}, "occurred_at"),
            ({"type": "heartbeat", "occurred_at": "yesterday"}, "occurred_at"),
            (
                {
                    "type": "heartbeat",
                    "occurred_at": "2026-11-23T10:00:00Z",
                    "metrics": {"signal_strength_dbm": "weak"},
                },
                "metrics",
            ),
            ({"type": "heartbeat", "occurred_at": "2026-11-23T10:00:00Z", "metrics": {"uptime_s": -1}}, "metrics"),
            ({"type": "heartbeat", "occurred_at": "2026-11-23T10:00:00Z", "code": "c" * 101}, "code"),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, client, body, field):
        terminal = registered(client)
        problem = assert_problem(
            client.post(f"{URL}/{terminal['id']}/health-events", body, format="json"), 400, "validation_error"
        )
        assert field in problem["errors"]
        assert not TerminalHealthEvent.objects.exists()
        assert client.get(f"{URL}/{terminal['id']}").json() == terminal

    def test_far_future_occurred_at_is_400(self, client):
        terminal = registered(client)
        response = report(client, terminal["id"], "heartbeat", occurred_at=now_iso(timedelta(hours=1)))
        assert "occurred_at" in assert_problem(response, 400, "validation_error")["errors"]
        assert not TerminalHealthEvent.objects.exists()
        assert report(client, terminal["id"], "heartbeat", occurred_at=now_iso(timedelta(minutes=1))).status_code == 201

    def test_unknown_terminal_is_404(self, client):
        assert_problem(report(client, "trm_nope", "heartbeat"), 404, "not_found")


@pytest.mark.django_db
class TestStatus:
    def put(self, client, terminal_id, status, reason=None):
        body = {"status": status} if reason is None else {"status": status, "reason": reason}
        return client.put(f"{URL}/{terminal_id}/status", body, format="json")

    def test_operator_statuses_with_events(self, client):
        terminal = registered(client)
        response = self.put(client, terminal["id"], "maintenance", "Replacing the PIN pad")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["status_reason"]) == ("maintenance", "Replacing the PIN pad")
        assert self.put(client, terminal["id"], "online").json()["status"] == "online"
        assert self.put(client, terminal["id"], "offline").json()["status"] == "offline"
        assert [(e.data["previous_status"], e.data["object"]["status"]) for e in status_events(terminal["id"])] == [
            ("offline", "maintenance"),
            ("maintenance", "online"),
            ("online", "offline"),
        ]
        assert status_events(terminal["id"])[0].data["object"]["status_reason"] == "Replacing the PIN pad"

    def test_faulted_terminal_can_be_set_online(self, client):
        terminal = registered(client)
        report(client, terminal["id"], "error", code="E")
        assert self.put(client, terminal["id"], "online").json()["status"] == "online"

    @pytest.mark.parametrize("target", ["online", "offline", "maintenance", "decommissioned"])
    def test_decommissioned_is_final(self, client, target):
        terminal = registered(client)
        assert self.put(client, terminal["id"], "decommissioned", "Removed").json()["status"] == "decommissioned"
        body = assert_problem(self.put(client, terminal["id"], target), 409, "invalid_state")
        assert "decommissioned" in body["detail"]
        assert client.get(f"{URL}/{terminal['id']}").json()["status"] == "decommissioned"
        assert len(status_events(terminal["id"])) == 1

    def test_same_status_is_409(self, client):
        terminal = registered(client)
        assert_problem(self.put(client, terminal["id"], "offline"), 409, "invalid_state")
        assert status_events(terminal["id"]) == []

    @pytest.mark.parametrize(
        "body",
        [{"status": "faulted"}, {"status": "broken"}, {}, {"status": None}, {"status": "online", "reason": "r" * 501}],
    )
    def test_bad_input_is_400(self, client, body):
        terminal = registered(client)
        assert_problem(client.put(f"{URL}/{terminal['id']}/status", body, format="json"), 400, "validation_error")
        assert client.get(f"{URL}/{terminal['id']}").json()["status"] == "offline"

    def test_post_is_405(self, client):
        terminal = registered(client)
        assert_problem(
            client.post(f"{URL}/{terminal['id']}/status", {"status": "online"}, format="json"),
            405,
            "method_not_allowed",
        )


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "not-a-time"])
def test_last_seen_before_impossible_times_are_400(client, value):
    assert_problem(client.get("/v1/terminals", {"last_seen_before": value}), 400, "validation_error")


@pytest.mark.django_db
def test_fast_representations_equal_the_declared_fields(operator):
    """`terminal_data` and `terminal_health_event_data` bypass the serializers' fields; they must say exactly
    what those fields say, byte for byte (21.0 is not 21), for every shape a column can take."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from rest_framework import serializers

    from evpay.api.renderers import JSONRenderer
    from terminals.serializers import TerminalHealthEventSerializer, TerminalSerializer

    render = JSONRenderer().render

    berlin = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    terminals = [
        Terminal.objects.create(operator=operator, serial_number="SN-R1"),
        Terminal.objects.create(
            operator=operator,
            serial_number="SN-R2",
            vendor="V",
            model="M",
            firmware_version="9",
            station_id="ST-9",
            location={"city": "Berlin", "country": "DE", "latitude": 52, "longitude": 13.4},  # keys missing
            capabilities=["PED_TERMINAL", "CHIP_CARD_SUPPORT"],
            metadata={"bay": "3", "nested": {"a": [1, 2]}},
            status="faulted",
            status_reason="error: E1",
            last_seen_at=berlin,  # another time zone than UTC, not read back
            health_last_event_type="error",
            health_last_error_code="E1",
            health_signal_strength_dbm=-70,
            health_temperature_c=21,
            health_errors_24h=3,
        ),
        Terminal.objects.create(operator=operator, serial_number="SN-R3", location=LOCATION, metadata={}),
    ]
    events = [
        TerminalHealthEvent.objects.create(
            operator=operator, terminal=terminals[0], type="heartbeat", occurred_at=berlin
        ),
        TerminalHealthEvent.objects.create(
            operator=operator,
            terminal=terminals[1],
            type="error",
            occurred_at=datetime.now(UTC),
            code="E1",
            message="broken",
            metrics={"signal_strength_dbm": -70},
        ),
        TerminalHealthEvent.objects.create(
            operator=operator,
            terminal=terminals[1],
            type="heartbeat",
            occurred_at=datetime.now(UTC),
            metrics={"signal_strength_dbm": -1, "temperature_c": 40, "uptime_s": 12},
        ),
    ]
    for terminal in [*terminals, *(Terminal.objects.get(pk=t.pk) for t in terminals)]:
        by_fields = serializers.ModelSerializer.to_representation(TerminalSerializer(), terminal)
        assert render(TerminalSerializer(terminal).data) == render(by_fields)
    for event in [*events, *(TerminalHealthEvent.objects.get(pk=e.pk) for e in events)]:
        by_fields = serializers.ModelSerializer.to_representation(TerminalHealthEventSerializer(), event)
        assert render(TerminalHealthEventSerializer(event).data) == render(by_fields)
