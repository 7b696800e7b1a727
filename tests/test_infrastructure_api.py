"""/v1/charging-infrastructure: mappings, connectors, adapter health and configuration."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from charging.models import Tariff
from infrastructure.models import AdapterCall, AdapterConfig, Connector, StationMapping
from tests.base import EndpointAccessTests, assert_problem
from tests.infrastructure_support import CCS, TYPE2, make_mapping
from webhooks.models import Event

BASE = "/v1/charging-infrastructure"
MAPPINGS = f"{BASE}/mappings"
SECRET_TOKEN = "tok-super-secret-4711"


def mapping_body(**overrides):
    return {
        "station_id": "DE*ABC*S1",
        "adapter_type": "simulator",
        "cpms_station_id": "CP-1",
        "connectors": [CCS, TYPE2],
        **overrides,
    }


class TestInfrastructureAccess(EndpointAccessTests):
    scope_resource = "infrastructure"
    endpoints = [
        ("GET", MAPPINGS, None),
        ("POST", MAPPINGS, mapping_body(station_id="X")),
        ("GET", MAPPINGS + "/{id}", None),
        ("PATCH", MAPPINGS + "/{id}", {"is_active": False}),
        ("DELETE", MAPPINGS + "/{id}", None),
        ("POST", MAPPINGS + "/{id}/test", {}),
        ("GET", f"{BASE}/connectors", None),
        ("GET", f"{BASE}/connectors/summary", None),
        ("GET", f"{BASE}/adapters/health", None),
        ("GET", f"{BASE}/config", None),
        ("PATCH", f"{BASE}/config/simulator", {"timeout_ms": 1000}),
    ]

    def make_object(self, operator):
        return make_mapping(operator, station_id=f"S-{StationMapping.objects.count()}")


@pytest.mark.django_db
class TestMappings:
    def test_create_returns_the_mapping(self, client, operator):
        tariff = Tariff.objects.create(operator=operator, name="T", currency="EUR", preauthorize_amount=5000)
        response = client.post(MAPPINGS, mapping_body(tariff_id=tariff.pk, metadata={"site": "Berlin"}), format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["id"].startswith("map_")
        assert set(body) == {
            "id",
            "station_id",
            "adapter_type",
            "cpms_station_id",
            "tariff_id",
            "is_active",
            "connectors",
            "last_connectivity_test",
            "metadata",
            "created_at",
            "updated_at",
        }
        assert (body["station_id"], body["adapter_type"], body["cpms_station_id"]) == ("DE*ABC*S1", "simulator", "CP-1")
        assert body["tariff_id"] == tariff.pk and body["is_active"] is True
        assert body["connectors"] == [CCS, TYPE2]
        assert body["last_connectivity_test"] is None and body["metadata"] == {"site": "Berlin"}
        assert client.get(f"{MAPPINGS}/{body['id']}").json() == body
        assert Connector.objects.filter(mapping_id=body["id"], status="UNKNOWN").count() == 2

    def test_unknown_adapter_type_is_400(self, client):
        body = assert_problem(
            client.post(MAPPINGS, mapping_body(adapter_type="ocpp-magic"), format="json"), 400, "validation_error"
        )
        assert "adapter_type" in body["errors"]
        assert StationMapping.objects.count() == 0

    @pytest.mark.parametrize(
        "field,value",
        [
            ("station_id", None),
            ("station_id", ""),
            ("cpms_station_id", None),
            ("station_id", "x" * 101),
            ("connectors", [{**CCS, "power_type": "AC_2_PHASE"}]),
            ("connectors", [{**CCS, "standard": "SCHUKO"}]),
            ("connectors", [{**CCS, "max_power_kw": 0}]),
            ("connectors", [{**CCS, "max_power_kw": "lots"}]),
            ("connectors", [{k: v for k, v in CCS.items() if k != "standard"}]),
            ("connectors", [CCS, CCS]),
            ("connectors", "1"),
            ("tariff_id", "trf_nope"),
            ("metadata", {"k": {"nested": 1}}),
            ("is_active", "maybe"),
        ],
    )
    def test_bad_input_is_400_and_creates_nothing(self, client, field, value):
        body = assert_problem(
            client.post(MAPPINGS, mapping_body(**{field: value}), format="json"), 400, "validation_error"
        )
        assert field in body["errors"]
        assert StationMapping.objects.count() == Connector.objects.count() == 0

    def test_tariff_of_another_operator_is_400(self, client, other_operator):
        tariff = Tariff.objects.create(operator=other_operator, name="T", currency="EUR", preauthorize_amount=1)
        body = assert_problem(client.post(MAPPINGS, mapping_body(tariff_id=tariff.pk), format="json"), 400)
        assert "tariff_id" in body["errors"]

    def test_same_station_twice_is_409(self, client, other_client):
        assert client.post(MAPPINGS, mapping_body(), format="json").status_code == 201
        assert_problem(
            client.post(MAPPINGS, mapping_body(cpms_station_id="CP-9"), format="json"), 409, "mapping_exists"
        )
        assert other_client.post(MAPPINGS, mapping_body(), format="json").status_code == 201

    def test_read_only_fields_are_ignored(self, client, operator, other_operator):
        response = client.post(
            MAPPINGS,
            mapping_body(id="map_mine", operator=other_operator.pk, last_connectivity_test={"status": "succeeded"}),
            format="json",
        )
        body = response.json()
        assert body["id"] != "map_mine" and body["last_connectivity_test"] is None
        assert StationMapping.objects.get(pk=body["id"]).operator == operator

    def test_list_filters_and_pages(self, client, operator, other_operator):
        make_mapping(operator, station_id="A", adapter_type="simulator")
        make_mapping(operator, station_id="B", adapter_type="ocpi", is_active=False)
        make_mapping(operator, station_id="C")
        make_mapping(other_operator, station_id="A")
        ids = lambda r: [m["station_id"] for m in r.json()["results"]]  # noqa: E731
        assert ids(client.get(MAPPINGS)) == ["C", "B", "A"]
        assert ids(client.get(MAPPINGS, {"adapter_type": "ocpi"})) == ["B"]
        assert ids(client.get(MAPPINGS, {"is_active": "false"})) == ["B"]
        assert ids(client.get(MAPPINGS, {"station_id": "A"})) == ["A"]
        page = client.get(MAPPINGS, {"limit": 2}).json()
        assert len(page["results"]) == 2 and page["next"]
        assert ids(client.get(page["next"])) == ["A"]
        assert_problem(client.get(MAPPINGS, {"adapter_type": "nope"}), 400, "validation_error")
        assert_problem(client.get(MAPPINGS, {"is_active": "perhaps"}), 400, "validation_error")

    def test_unknown_id_is_404(self, client):
        assert_problem(client.get(f"{MAPPINGS}/map_nope"), 404, "not_found")
        assert_problem(client.patch(f"{MAPPINGS}/map_nope", {}, format="json"), 404, "not_found")
        assert_problem(client.delete(f"{MAPPINGS}/map_nope"), 404, "not_found")
        assert_problem(client.post(f"{MAPPINGS}/map_nope/test"), 404, "not_found")


@pytest.mark.django_db
class TestMappingUpdate:
    def test_patch_changes_only_given_fields(self, client, operator):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2), metadata={"a": "1"})
        Connector.objects.filter(mapping=mapping, connector_id="1").update(status="CHARGING")
        response = client.patch(
            f"{MAPPINGS}/{mapping.pk}", {"cpms_station_id": "CP-2", "is_active": False}, format="json"
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["cpms_station_id"], body["is_active"], body["station_id"]) == ("CP-2", False, "DE*ABC*S1")
        assert body["metadata"] == {"a": "1"} and len(body["connectors"]) == 2

    def test_patch_connectors_replaces_the_list_keeping_statuses(self, client, operator):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2))
        Connector.objects.filter(mapping=mapping, connector_id="1").update(status="CHARGING")
        changed = {**CCS, "max_power_kw": 300}
        body = client.patch(f"{MAPPINGS}/{mapping.pk}", {"connectors": [changed]}, format="json").json()
        assert body["connectors"] == [changed]
        assert Connector.objects.get(mapping=mapping).status == "CHARGING"

    def test_patch_validates_like_create(self, client, operator):
        mapping = make_mapping(operator)
        make_mapping(operator, station_id="TAKEN")
        url = f"{MAPPINGS}/{mapping.pk}"
        assert "adapter_type" in assert_problem(client.patch(url, {"adapter_type": "x"}, format="json"), 400)["errors"]
        partial_connector = {"connector_id": "3", "max_power_kw": 11}
        assert (
            "connectors"
            in assert_problem(client.patch(url, {"connectors": [partial_connector]}, format="json"), 400)["errors"]
        )
        assert_problem(client.patch(url, {"station_id": "TAKEN"}, format="json"), 409, "mapping_exists")
        assert StationMapping.objects.get(pk=mapping.pk).station_id == "DE*ABC*S1"

    def test_patch_tariff_and_clear_it(self, client, operator):
        tariff = Tariff.objects.create(operator=operator, name="T", currency="EUR", preauthorize_amount=5000)
        mapping = make_mapping(operator)
        url = f"{MAPPINGS}/{mapping.pk}"
        assert client.patch(url, {"tariff_id": tariff.pk}, format="json").json()["tariff_id"] == tariff.pk
        assert client.patch(url, {"is_active": True}, format="json").json()["tariff_id"] == tariff.pk
        assert client.patch(url, {"tariff_id": None}, format="json").json()["tariff_id"] is None

    def test_removing_a_connector_with_a_running_session_is_409(self, client, operator, running_sessions):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2))
        running_sessions[(mapping.pk, "2")] = "chs_running"
        assert_problem(
            client.patch(f"{MAPPINGS}/{mapping.pk}", {"connectors": [CCS]}, format="json"), 409, "mapping_in_use"
        )
        assert mapping.connectors.count() == 2
        url = f"{MAPPINGS}/{mapping.pk}"
        assert_problem(client.patch(url, {"cpms_station_id": "CP-9"}, format="json"), 409, "mapping_in_use")
        assert_problem(client.patch(url, {"adapter_type": "ocpi"}, format="json"), 409, "mapping_in_use")
        assert client.patch(url, {"cpms_station_id": "CP-1", "metadata": {"a": "b"}}, format="json").status_code == 200


@pytest.mark.django_db
class TestMappingDelete:
    def test_delete_is_204_then_gone(self, client, operator):
        mapping = make_mapping(operator)
        assert client.delete(f"{MAPPINGS}/{mapping.pk}").status_code == 204
        assert_problem(client.get(f"{MAPPINGS}/{mapping.pk}"), 404, "not_found")
        assert_problem(client.delete(f"{MAPPINGS}/{mapping.pk}"), 404, "not_found")
        assert client.get(MAPPINGS).json()["results"] == []
        assert client.get(f"{BASE}/connectors").json()["results"] == []
        # The station id is free again.
        assert client.post(MAPPINGS, mapping_body(), format="json").status_code == 201

    def test_delete_with_a_running_session_is_409(self, client, operator, running_sessions):
        mapping = make_mapping(operator)
        running_sessions[(mapping.pk, "1")] = "chs_running"
        body = assert_problem(client.delete(f"{MAPPINGS}/{mapping.pk}"), 409, "mapping_in_use")
        assert "chs_running" in body["detail"]
        assert client.get(f"{MAPPINGS}/{mapping.pk}").status_code == 200
        running_sessions.clear()
        assert client.delete(f"{MAPPINGS}/{mapping.pk}").status_code == 204


@pytest.mark.django_db
class TestConnectivityTestRequest:
    def test_is_202_pending(self, client, operator):
        mapping = make_mapping(operator)
        response = client.post(f"{MAPPINGS}/{mapping.pk}/test")
        assert response.status_code == 202
        assert response.json() == {
            "mapping_id": mapping.pk,
            "status": "pending",
            "latency_ms": None,
            "error": None,
            "tested_at": None,
        }
        assert client.get(f"{MAPPINGS}/{mapping.pk}").json()["last_connectivity_test"] == {
            "status": "pending",
            "latency_ms": None,
            "error": None,
            "tested_at": None,
        }


@pytest.mark.django_db
class TestConnectors:
    def test_one_row_per_connector_with_running_session(self, client, operator, other_operator, running_sessions):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2))
        make_mapping(other_operator)
        running_sessions[(mapping.pk, "1")] = "chs_1"
        rows = client.get(f"{BASE}/connectors").json()["results"]
        assert len(rows) == 2
        row = next(r for r in rows if r["connector_id"] == "1")
        assert row == {
            "mapping_id": mapping.pk,
            "station_id": "DE*ABC*S1",
            "connector_id": "1",
            "evse_uid": "DE*ABC*E1",
            "status": "UNKNOWN",
            "standard": "IEC_62196_T2_COMBO",
            "power_type": "DC",
            "max_power_kw": 150.0,
            "status_updated_at": None,
            "active_session_id": "chs_1",
        }
        assert next(r for r in rows if r["connector_id"] == "2")["active_session_id"] is None

    def test_filters(self, client, operator):
        first = make_mapping(operator, station_id="A", connectors=(CCS, TYPE2))
        make_mapping(operator, station_id="B", adapter_type="ocpi", cpms_station_id="LOC-1")
        Connector.objects.filter(mapping=first, connector_id="2").update(status="AVAILABLE")

        def rows(**q):
            return {(r["station_id"], r["connector_id"]) for r in client.get(f"{BASE}/connectors", q).json()["results"]}

        assert rows() == {("A", "1"), ("A", "2"), ("B", "1")}
        assert rows(station_id="A") == {("A", "1"), ("A", "2")}
        assert rows(status="AVAILABLE") == {("A", "2")}
        assert rows(adapter_type="ocpi") == {("B", "1")}
        assert rows(mapping_id=first.pk) == {("A", "1"), ("A", "2")}
        assert_problem(client.get(f"{BASE}/connectors", {"status": "BUSY"}), 400, "validation_error")
        assert_problem(client.get(f"{BASE}/connectors", {"adapter_type": "nope"}), 400, "validation_error")

    def test_summary(self, client, operator, other_operator):
        first = make_mapping(operator, station_id="A", connectors=(CCS, TYPE2))
        make_mapping(operator, station_id="B", adapter_type="ocpi")
        make_mapping(operator, station_id="C", connectors=())
        make_mapping(other_operator, station_id="A")
        Connector.objects.filter(mapping=first).update(status="AVAILABLE")
        body = client.get(f"{BASE}/connectors/summary").json()
        assert body["total"] == 3 and body["stations"] == 3
        assert body["by_status"] == {
            "AVAILABLE": 2,
            "BLOCKED": 0,
            "CHARGING": 0,
            "INOPERATIVE": 0,
            "OUTOFORDER": 0,
            "PLANNED": 0,
            "REMOVED": 0,
            "RESERVED": 0,
            "UNKNOWN": 1,
        }
        assert body["by_adapter"] == {"ocpi": 1, "simulator": 2}
        assert body["available_ratio"] == pytest.approx(2 / 3, abs=1e-4)

    def test_summary_of_nothing(self, client):
        body = client.get(f"{BASE}/connectors/summary").json()
        assert (body["total"], body["stations"], body["available_ratio"]) == (0, 0, 0.0)

    def test_summary_and_health_take_a_constant_number_of_queries(self, client, operator):
        def queries(path):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(path).status_code == 200
            return len(captured)

        make_mapping(operator, station_id="S0")
        client.get(f"{BASE}/connectors")  # the credential's first use records itself once
        small = (
            queries(f"{BASE}/connectors/summary"),
            queries(f"{BASE}/adapters/health"),
            queries(f"{BASE}/connectors"),
        )
        for i in range(1, 30):
            make_mapping(
                operator, station_id=f"S{i}", adapter_type=["simulator", "ocpi"][i % 2], connectors=(CCS, TYPE2)
            )
        AdapterCall.objects.bulk_create(
            AdapterCall(operator=operator, adapter_type="ocpi", operation="ping", outcome="success", latency_ms=i)
            for i in range(50)
        )
        large = (
            queries(f"{BASE}/connectors/summary"),
            queries(f"{BASE}/adapters/health"),
            queries(f"{BASE}/connectors"),
        )
        assert small == large


@pytest.mark.django_db
class TestAdapterHealth:
    def test_one_entry_per_adapter_type_with_defaults(self, client, operator):
        make_mapping(operator)
        body = client.get(f"{BASE}/adapters/health").json()
        entries = {e["adapter_type"]: e for e in body["results"]}
        assert set(entries) == {"simulator", "ocpi"} and body["next"] is None
        assert entries["simulator"] == {
            "adapter_type": "simulator",
            "enabled": True,
            "status": "healthy",
            "circuit": "closed",
            "last_success_at": None,
            "last_failure_at": None,
            "requests_5m": 0,
            "error_rate_5m": 0.0,
            "p95_latency_ms_5m": None,
            "mapped_stations": 1,
        }
        assert (entries["ocpi"]["enabled"], entries["ocpi"]["status"]) == (False, "disabled")

    def test_figures_over_five_minutes(self, client, operator):
        AdapterCall.objects.bulk_create(
            [
                AdapterCall(
                    operator=operator, adapter_type="simulator", operation="ping", outcome="success", latency_ms=ms
                )
                for ms in range(1, 101)
            ]
            + [
                AdapterCall(
                    operator=operator, adapter_type="simulator", operation="ping", outcome="failure", latency_ms=5
                )
                for _ in range(25)
            ]
            + [
                AdapterCall(
                    operator=operator, adapter_type="simulator", operation="ping", outcome="circuit_open", latency_ms=0
                )
                for _ in range(10)
            ]
        )
        entry = next(
            e for e in client.get(f"{BASE}/adapters/health").json()["results"] if e["adapter_type"] == "simulator"
        )
        assert entry["requests_5m"] == 125
        assert entry["error_rate_5m"] == 0.2
        assert 90 <= entry["p95_latency_ms_5m"] <= 96
        assert entry["status"] == "degraded"

    def test_open_circuit_shows_down(self, client, operator):
        make_mapping(operator)
        AdapterConfig.objects.filter(operator=operator).update(circuit_state="open")
        entry = next(
            e for e in client.get(f"{BASE}/adapters/health").json()["results"] if e["adapter_type"] == "simulator"
        )
        assert (entry["status"], entry["circuit"]) == ("down", "open")


CONFIG = f"{BASE}/config"


@pytest.mark.django_db
class TestAdapterConfig:
    def test_list_shows_every_adapter_type(self, client):
        body = client.get(CONFIG).json()
        entries = {e["adapter_type"]: e for e in body["results"]}
        assert set(entries) == {"simulator", "ocpi"}
        assert set(entries["simulator"]) == {
            "adapter_type",
            "enabled",
            "base_url",
            "timeout_ms",
            "max_retries",
            "poll_interval_s",
            "credentials_set",
            "registered",
            "updated_at",
        }
        assert entries["simulator"]["enabled"] is True and entries["ocpi"]["enabled"] is False
        assert entries["ocpi"]["credentials_set"] is False
        # `registered` is the OCPI handshake's (tests/test_ocpi_extrawest.py); other adapters have none.
        assert entries["ocpi"]["registered"] is False and entries["simulator"]["registered"] is None

    def test_patch_updates_and_never_returns_credentials(self, client, operator, caplog):
        # (For ocpi, credentials are the CPO's token A and run the handshake: tests/test_ocpi_extrawest.py.)
        caplog.set_level(logging.DEBUG)
        response = client.patch(
            f"{CONFIG}/simulator",
            {
                "enabled": True,
                "base_url": "https://cpo.example.com/ocpi/versions",
                "timeout_ms": 2500,
                "max_retries": 0,
                "poll_interval_s": 30,
                "credentials": {"token": SECRET_TOKEN},
            },
            format="json",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["enabled"] is True and body["credentials_set"] is True
        assert (body["timeout_ms"], body["max_retries"], body["poll_interval_s"]) == (2500, 0, 30)
        assert "credentials" not in body and SECRET_TOKEN not in response.content.decode()
        stored = AdapterConfig.objects.get(operator=operator, adapter_type="simulator")
        assert stored.credentials_encrypted and SECRET_TOKEN not in stored.credentials_encrypted
        assert SECRET_TOKEN not in caplog.text
        # Untouched fields stay; credentials can be removed.
        body = client.patch(f"{CONFIG}/simulator", {"timeout_ms": 3000}, format="json").json()
        assert (body["timeout_ms"], body["credentials_set"], body["poll_interval_s"]) == (3000, True, 30)
        assert (
            client.patch(f"{CONFIG}/simulator", {"credentials": None}, format="json").json()["credentials_set"] is False
        )

    def test_credentials_appear_in_no_response(self, client, operator):
        make_mapping(operator)
        client.patch(f"{CONFIG}/simulator", {"credentials": {"token": SECRET_TOKEN}}, format="json")
        for path in (
            CONFIG,
            f"{BASE}/adapters/health",
            MAPPINGS,
            f"{BASE}/connectors",
            f"{BASE}/connectors/summary",
            "/api/schema",
        ):
            response = client.get(path)
            assert response.status_code == 200
            assert SECRET_TOKEN not in response.content.decode(), path

    @pytest.mark.parametrize(
        "field,value",
        [
            ("timeout_ms", 99),
            ("timeout_ms", 60001),
            ("timeout_ms", "fast"),
            ("max_retries", -1),
            ("max_retries", 11),
            ("poll_interval_s", 9),
            ("poll_interval_s", 3601),
            ("poll_interval_s", 1.5),
            ("enabled", "sure"),
            ("base_url", "not a url"),
            ("credentials", {"password": "x"}),
            ("credentials", "x"),
        ],
    )
    def test_validation(self, client, operator, field, value):
        body = assert_problem(
            client.patch(f"{CONFIG}/simulator", {field: value}, format="json"), 400, "validation_error"
        )
        assert field in body["errors"]
        assert not AdapterConfig.objects.filter(operator=operator).exclude(timeout_ms=5000).exists()

    @pytest.mark.parametrize(
        "field,value",
        [
            ("timeout_ms", 100),
            ("timeout_ms", 60000),
            ("max_retries", 0),
            ("max_retries", 10),
            ("poll_interval_s", 10),
            ("poll_interval_s", 3600),
        ],
    )
    def test_bounds_are_inclusive(self, client, field, value):
        assert client.patch(f"{CONFIG}/simulator", {field: value}, format="json").json()[field] == value

    def test_unknown_adapter_type_is_404(self, client):
        assert_problem(client.patch(f"{CONFIG}/ocpp-magic", {"timeout_ms": 1000}, format="json"), 404, "not_found")
        assert_problem(client.patch(f"{CONFIG}/ocpp-magic", {"timeout_ms": 1}, format="json"), 404, "not_found")

    def test_enabling_ocpi_needs_a_base_url(self, client):
        body = assert_problem(client.patch(f"{CONFIG}/ocpi", {"enabled": True}, format="json"), 400)
        assert "base_url" in body["errors"]

    def test_config_is_per_operator(self, client, other_client):
        client.patch(f"{CONFIG}/simulator", {"timeout_ms": 1234}, format="json")
        theirs = {e["adapter_type"]: e for e in other_client.get(CONFIG).json()["results"]}
        assert theirs["simulator"]["timeout_ms"] == 5000

    def test_no_event_or_call_record_holds_credentials(self, client, operator, settings):
        from infrastructure.services import adapter_health_probe, adapter_poll, mapping_connectivity_test_run

        mapping = make_mapping(operator)
        client.patch(f"{CONFIG}/simulator", {"credentials": {"token": SECRET_TOKEN}, "max_retries": 0}, format="json")
        config = AdapterConfig.objects.get(operator=operator, adapter_type="simulator")
        adapter_health_probe(config=config)
        adapter_poll(config=config)
        mapping_connectivity_test_run(mapping=mapping)
        settings.CPMS_SIMULATOR_MODE = "fail"
        adapter_health_probe(config=config)
        types = set(Event.objects.values_list("type", flat=True))
        assert types == {
            "infrastructure.connector_status_changed",
            "infrastructure.connectivity_tested",
            "infrastructure.adapter_status_changed",
        }
        assert not any(SECRET_TOKEN in str(e.data) for e in Event.objects.all())
        assert not AdapterCall.objects.filter(error__contains=SECRET_TOKEN).exists()
