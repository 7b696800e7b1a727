"""Infrastructure work done by a real Celery worker: connectivity tests, status polling, health probes."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from infrastructure.adapters.base import ConnectorStatusReport
from infrastructure.models import AdapterConfig, Connector, StationMapping
from infrastructure.services import (
    adapter_calls_prune,
    adapter_config_ensure,
    adapter_health_probe,
    adapter_poll,
    connector_statuses_apply,
    simulator_connector_status_set,
)
from infrastructure.tasks import poll_connector_statuses
from tests.conftest import wait_for
from tests.infrastructure_support import CCS, TYPE2, make_mapping
from tests.test_infrastructure_api import BASE, MAPPINGS
from webhooks.models import Event


def _result_of(mapping_id):
    mapping = StationMapping.objects.get(pk=mapping_id)
    return mapping if mapping.connectivity_test_status not in ("", "pending") else None


@pytest.mark.django_db(transaction=True)
class TestConnectivityTestThroughTheWorker:
    def test_succeeded_with_latency_and_event(self, client, operator, celery_worker):
        mapping = make_mapping(operator)
        response = client.post(f"{MAPPINGS}/{mapping.pk}/test")
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        wait_for(lambda: _result_of(mapping.pk), message="connectivity test result")
        result = client.get(f"{MAPPINGS}/{mapping.pk}").json()["last_connectivity_test"]
        assert result["status"] == "succeeded" and result["error"] is None
        assert isinstance(result["latency_ms"], int) and result["latency_ms"] >= 0
        assert result["tested_at"].endswith("Z")
        event = Event.objects.get(type="infrastructure.connectivity_tested")
        assert event.operator_id == operator.pk
        assert event.data["object"]["id"] == mapping.pk
        assert event.data["object"]["last_connectivity_test"]["status"] == "succeeded"

    def test_failed_when_the_simulator_is_told_to_fail(self, client, operator, celery_worker):
        mapping = make_mapping(operator, cpms_station_id="SIM-FAIL-7")
        AdapterConfig.objects.filter(
            pk=adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator").pk
        ).update(max_retries=0)
        assert client.post(f"{MAPPINGS}/{mapping.pk}/test").status_code == 202
        wait_for(lambda: _result_of(mapping.pk), message="connectivity test result")
        result = client.get(f"{MAPPINGS}/{mapping.pk}").json()["last_connectivity_test"]
        assert result["status"] == "failed"
        assert "simulated CPMS failure" in result["error"]
        assert result["latency_ms"] >= 0
        assert (
            Event.objects.get(type="infrastructure.connectivity_tested").data["object"]["last_connectivity_test"][
                "status"
            ]
            == "failed"
        )

    def test_repeated_failures_open_the_circuit_and_health_shows_it(self, client, operator, celery_worker):
        # Inactive: the status fetch of a new mapping would add a failure of its own to the five counted below.
        mapping = make_mapping(operator, cpms_station_id="SIM-TIMEOUT-1", is_active=False)
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        AdapterConfig.objects.filter(pk=config.pk).update(max_retries=0)
        # The worker reads its threshold from its own settings (default 5): five failed tests.
        for n in range(1, 6):
            client.post(f"{MAPPINGS}/{mapping.pk}/test")
            wait_for(lambda: _result_of(mapping.pk), message=f"connectivity test {n}")
        config.refresh_from_db()
        assert (config.circuit_state, config.consecutive_failures) == ("open", 5)
        entry = next(
            e for e in client.get(f"{BASE}/adapters/health").json()["results"] if e["adapter_type"] == "simulator"
        )
        assert (entry["circuit"], entry["status"]) == ("open", "down")
        assert entry["requests_5m"] == 5 and entry["error_rate_5m"] == 1.0
        assert entry["last_failure_at"] is not None and entry["last_success_at"] is None
        # While open, a test of a healthy station fails at once without calling the CPMS.
        healthy = make_mapping(operator, station_id="S2", cpms_station_id="CP-2")
        client.post(f"{MAPPINGS}/{healthy.pk}/test")
        wait_for(lambda: _result_of(healthy.pk), message="test behind the open circuit")
        assert "circuit_open" in StationMapping.objects.get(pk=healthy.pk).connectivity_test_error


def statuses(operator):
    return {c.connector_id: c.status for c in Connector.objects.filter(operator=operator)}


@pytest.mark.django_db
class TestStatusPolling:
    @pytest.mark.parametrize(
        "protocol,raw,expected",
        [
            ("ocpp1.6", "Available", "AVAILABLE"),
            ("ocpp1.6", "Preparing", "CHARGING"),
            ("ocpp1.6", "Charging", "CHARGING"),
            ("ocpp1.6", "SuspendedEV", "CHARGING"),
            ("ocpp1.6", "SuspendedEVSE", "CHARGING"),
            ("ocpp1.6", "Finishing", "CHARGING"),
            ("ocpp1.6", "Reserved", "RESERVED"),
            ("ocpp1.6", "Unavailable", "INOPERATIVE"),
            ("ocpp1.6", "Faulted", "OUTOFORDER"),
            ("ocpp2.0.1", "Available", "AVAILABLE"),
            ("ocpp2.0.1", "Occupied", "CHARGING"),
            ("ocpp2.0.1", "Reserved", "RESERVED"),
            ("ocpp2.0.1", "Unavailable", "INOPERATIVE"),
            ("ocpp2.0.1", "Faulted", "OUTOFORDER"),
            ("ocpp2.0.1", "Charging", "UNKNOWN"),
            ("ocpp1.6", "Exploded", "UNKNOWN"),
            ("ocpi", "BLOCKED", "BLOCKED"),
        ],
    )
    def test_ocpp_values_map_onto_ocpi(self, operator, protocol, raw, expected):
        make_mapping(operator)
        simulator_connector_status_set(cpms_station_id="CP-1", connector_id="1", raw_status=raw, protocol=protocol)
        adapter_poll(config=adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator"))
        assert statuses(operator) == {"1": expected}

    def test_events_only_on_real_changes(self, operator):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2))
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        assert adapter_poll(config=config) == 2  # UNKNOWN -> AVAILABLE for both
        assert adapter_poll(config=config) == 0
        simulator_connector_status_set(
            cpms_station_id="CP-1", connector_id="2", raw_status="Occupied", protocol="ocpp2.0.1"
        )
        assert adapter_poll(config=config) == 1
        # SuspendedEV is another OCPP value, but the same OCPI status: no event.
        simulator_connector_status_set(cpms_station_id="CP-1", connector_id="2", raw_status="SuspendedEV")
        assert adapter_poll(config=config) == 0
        events = list(Event.objects.filter(type="infrastructure.connector_status_changed").order_by("created_at"))
        assert len(events) == 3
        last = events[-1].data["object"]
        assert (last["mapping_id"], last["connector_id"], last["status"], last["previous_status"]) == (
            mapping.pk,
            "2",
            "CHARGING",
            "AVAILABLE",
        )
        assert last["station_id"] == "DE*ABC*S1" and last["status_updated_at"]
        connector = Connector.objects.get(mapping=mapping, connector_id="2")
        assert connector.status_updated_at is not None

    def test_unreported_and_foreign_connectors_are_left_alone(self, operator, other_operator):
        make_mapping(operator)
        theirs = make_mapping(other_operator)
        report = ConnectorStatusReport(
            cpms_station_id="CP-1", connector_id="1", status="CHARGING", protocol="ocpi", raw_status="CHARGING"
        )
        stray = ConnectorStatusReport(
            cpms_station_id="CP-1", connector_id="99", status="CHARGING", protocol="ocpi", raw_status="CHARGING"
        )
        assert connector_statuses_apply(operator_id=operator.pk, adapter_type="simulator", reports=[report, stray]) == 1
        assert Connector.objects.get(mapping=theirs).status == "UNKNOWN"

    def test_inactive_and_deleted_mappings_are_not_polled(self, operator, client):
        make_mapping(operator, station_id="A", is_active=False)
        deleted = make_mapping(operator, station_id="B", cpms_station_id="CP-2")
        client.delete(f"{MAPPINGS}/{deleted.pk}")
        assert adapter_poll(config=adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")) == 0

    def test_a_failing_cpms_leaves_statuses_unchanged(self, operator):
        make_mapping(operator, cpms_station_id="SIM-FAIL-1")
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        AdapterConfig.objects.filter(pk=config.pk).update(max_retries=0)
        config.refresh_from_db()
        assert adapter_poll(config=config) == 0
        assert statuses(operator) == {"1": "UNKNOWN"}


@pytest.mark.django_db(transaction=True)
class TestPollingBeatThroughTheWorker:
    def test_beat_polls_due_adapters_once_per_interval(self, operator, other_operator, celery_worker):
        simulator_connector_status_set(cpms_station_id="CP-1", connector_id="2", raw_status="Faulted")
        make_mapping(operator, connectors=(CCS, TYPE2))  # each new mapping is fetched at once, too
        make_mapping(other_operator, cpms_station_id="CP-9")
        mine = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        adapter_config_ensure(operator_id=other_operator.pk, adapter_type="simulator")
        # Never polled: both due.
        assert poll_connector_statuses() == 2
        wait_for(lambda: statuses(operator) == {"1": "AVAILABLE", "2": "OUTOFORDER"}, message="polled statuses")
        wait_for(
            lambda: Connector.objects.get(operator=other_operator).status == "AVAILABLE",
            message="other operator polled",
        )
        # Within poll_interval_s nothing is due.
        assert poll_connector_statuses() == 0
        AdapterConfig.objects.filter(pk=mine.pk).update(last_polled_at=timezone.now() - timedelta(seconds=61))
        assert poll_connector_statuses() == 1
        assert Event.objects.filter(type="infrastructure.connector_status_changed", operator=operator).count() == 2


@pytest.mark.django_db
class TestHealthProbe:
    @override_settings(CPMS_CIRCUIT_FAILURE_THRESHOLD=2)
    def test_status_changes_are_announced_once(self, operator, settings):
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        AdapterConfig.objects.filter(pk=config.pk).update(max_retries=0)
        config.refresh_from_db()
        assert adapter_health_probe(config=config) == "healthy"  # first probe: the starting point, no event
        settings.CPMS_SIMULATOR_MODE = "fail"
        adapter_health_probe(config=config)
        assert adapter_health_probe(config=config) == "down"
        assert adapter_health_probe(config=config) == "down"
        events = list(Event.objects.filter(type="infrastructure.adapter_status_changed").order_by("created_at"))
        assert [(e.data["object"]["previous_status"], e.data["object"]["status"]) for e in events] == [
            ("healthy", "degraded"),
            ("degraded", "down"),
        ]
        assert events[-1].data["object"]["circuit"] == "open"
        # Recovery: after the reset timeout the probe's ping is the half-open trial.
        settings.CPMS_SIMULATOR_MODE = ""
        settings.CPMS_CIRCUIT_RESET_TIMEOUT = 0
        assert adapter_health_probe(config=config) in ("healthy", "degraded")
        config.refresh_from_db()
        assert config.circuit_state == "closed"

    def test_disabled_adapter_is_reported_disabled_without_a_call(self, operator):
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="ocpi")
        assert adapter_health_probe(config=config) == "disabled"


@pytest.mark.django_db
def test_old_call_records_are_pruned(operator):
    from infrastructure.models import AdapterCall

    AdapterCall.objects.create(
        operator=operator,
        adapter_type="simulator",
        operation="ping",
        outcome="success",
        latency_ms=1,
        created_at=timezone.now() - timedelta(days=2),
    )
    AdapterCall.objects.create(
        operator=operator, adapter_type="simulator", operation="ping", outcome="success", latency_ms=1
    )
    assert adapter_calls_prune() == 1
    assert AdapterCall.objects.count() == 1
