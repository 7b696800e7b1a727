"""Mapping services used by the API and by the charging app."""

import re
from decimal import Decimal

import pytest

from evpay.core.errors import ValidationFailed
from infrastructure.models import Connector, StationMapping
from infrastructure.services import MappingExists, MappingInUse, mapping_create, mapping_delete, mapping_update

CONNECTOR = {
    "connector_id": "1",
    "evse_uid": "E1",
    "standard": "IEC_62196_T2_COMBO",
    "power_type": "DC",
    "max_power_kw": Decimal("150"),
}


@pytest.mark.django_db
class TestMappingServices:
    def test_create_with_connectors(self, operator):
        mapping = mapping_create(
            operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="CP-1", connectors=[CONNECTOR]
        )
        assert mapping.pk.startswith("map_")
        connector = mapping.connectors.get()
        assert (connector.status, connector.operator_id) == ("UNKNOWN", operator.pk)

    def test_unknown_adapter_type(self, operator):
        with pytest.raises(ValidationFailed):
            mapping_create(operator=operator, station_id="S1", adapter_type="nope", cpms_station_id="CP-1")

    def test_station_unique_per_operator_until_deleted(self, operator, other_operator):
        mapping = mapping_create(operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="A")
        mapping_create(operator=other_operator, station_id="S1", adapter_type="simulator", cpms_station_id="A")
        with pytest.raises(MappingExists):
            mapping_create(operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="B")
        mapping_delete(mapping=mapping)
        assert StationMapping.objects.live().filter(operator=operator).count() == 0
        mapping_create(operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="B")

    def test_delete_refused_while_a_session_runs(self, operator, running_sessions):
        mapping = mapping_create(
            operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="CP-1", connectors=[CONNECTOR]
        )
        running_sessions[(mapping.pk, "1")] = "chs_1"
        with pytest.raises(MappingInUse) as raised:
            mapping_delete(mapping=mapping)
        assert raised.value.code == "mapping_in_use"
        with pytest.raises(MappingInUse):
            mapping_update(mapping=mapping, connectors=[])
        assert StationMapping.objects.live().filter(pk=mapping.pk).exists()
        running_sessions.clear()
        mapping_delete(mapping=mapping)
        assert StationMapping.objects.get(pk=mapping.pk).deleted_at is not None

    def test_replacing_connectors_keeps_status_of_kept_ones(self, operator):
        mapping = mapping_create(
            operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="CP-1", connectors=[CONNECTOR]
        )
        Connector.objects.filter(mapping=mapping).update(status="CHARGING")
        mapping_update(
            mapping=mapping,
            connectors=[
                {**CONNECTOR, "max_power_kw": Decimal("50")},
                {**CONNECTOR, "connector_id": "2", "evse_uid": "E2"},
            ],
        )
        connectors = {c.connector_id: c for c in mapping.connectors.all()}
        assert connectors["1"].status == "CHARGING" and connectors["1"].max_power_kw == Decimal("50")
        assert connectors["2"].status == "UNKNOWN"


@pytest.mark.django_db
def test_demo_seed_maps_simulator_stations_once(capsys):
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")
    mappings = StationMapping.objects.live().filter(metadata__demo="true")
    assert mappings.count() == 3
    assert set(mappings.values_list("adapter_type", flat=True)) == {"simulator"}
    assert Connector.objects.filter(mapping__in=mappings).count() == 4


@pytest.mark.django_db
def test_prometheus_selectors(operator):
    from infrastructure.selectors import adapter_call_totals, connector_counts_by_status
    from infrastructure.services import adapter_for_mapping

    mapping = mapping_create(
        operator=operator,
        station_id="S1",
        adapter_type="simulator",
        cpms_station_id="CP-1",
        connectors=[CONNECTOR, {**CONNECTOR, "connector_id": "2"}],
    )
    Connector.objects.filter(mapping=mapping, connector_id="2").update(status="CHARGING")
    counts = connector_counts_by_status()
    assert (counts["UNKNOWN"], counts["CHARGING"], counts["AVAILABLE"]) == (1, 1, 0)
    adapter = adapter_for_mapping(mapping)
    adapter.ping()
    adapter.ping()
    totals = adapter_call_totals()
    assert totals == [
        {
            "adapter_type": "simulator",
            "operation": "ping",
            "outcome": "success",
            "count": 2,
            "latency_ms_sum": totals[0]["latency_ms_sum"],
        }
    ]


@pytest.mark.django_db(transaction=True)  # health checks run in threads with their own connections
def test_metrics_and_detailed_health(client, operator, anon_client):
    from infrastructure.models import AdapterConfig
    from infrastructure.services import adapter_for_mapping

    mapping = mapping_create(  # inactive: a worker's status fetch of the new mapping changes no figure below
        operator=operator,
        station_id="S1",
        adapter_type="simulator",
        cpms_station_id="CP-1",
        connectors=[CONNECTOR],
        is_active=False,
    )
    latency = re.compile(
        r'^evpay_cpms_adapter_call_duration_seconds_count\{adapter_type="simulator",operation="ping",'
        r'outcome="success"\} ([0-9.]+)$',
        re.M,
    )

    def pings_timed() -> float:  # a histogram of this process (it counts every test's pings)
        match = latency.search(anon_client.get("/metrics").content.decode())
        return float(match.group(1)) if match else 0.0

    before = pings_timed()
    adapter_for_mapping(mapping).ping()
    text = anon_client.get("/metrics").content.decode()
    assert 'evpay_connectors{status="UNKNOWN"} 1.0' in text
    assert 'evpay_connectors{status="CHARGING"} 0.0' in text
    assert 'evpay_cpms_adapter_calls_total{adapter_type="simulator",operation="ping",outcome="success"} 1.0' in text
    assert pings_timed() == before + 1
    assert 'evpay_cpms_adapter_circuits{adapter_type="simulator",circuit="closed"} 1.0' in text
    component = client.get("/health/detailed").json()["components"]["cpms_adapters"]
    assert (component["status"], component["open_circuits"]) == ("ok", 0)
    AdapterConfig.objects.filter(operator=operator).update(circuit_state="open")
    component = client.get("/health/detailed").json()["components"]["cpms_adapters"]
    assert (component["status"], component["open_circuits"]) == ("degraded", 1)
    assert component["circuits"]["simulator"]["open"] == 1


@pytest.mark.django_db
def test_connector_counts_of_one_operator(operator, other_operator):
    from infrastructure.selectors import connector_counts_by_status, dashboard_panels

    mapping_create(
        operator=operator, station_id="S1", adapter_type="simulator", cpms_station_id="CP-1", connectors=[CONNECTOR]
    )
    mapping_create(
        operator=other_operator,
        station_id="S1",
        adapter_type="simulator",
        cpms_station_id="CP-1",
        connectors=[CONNECTOR, {**CONNECTOR, "connector_id": "2"}],
    )
    assert connector_counts_by_status()["UNKNOWN"] == 3
    assert connector_counts_by_status(operator_id=operator.pk)["UNKNOWN"] == 1
    (panel,) = dashboard_panels(operator_id=operator.pk, since=None)
    assert dict(panel.rows)["UNKNOWN"] == 1 and dict(panel.rows)["AVAILABLE"] == 0
    (panel,) = dashboard_panels(operator_id=None, since=None)
    assert dict(panel.rows)["UNKNOWN"] == 3
