"""The adapter registry: circuit breaker, metrics, retries, and the simulator's conventions."""

import pytest
from django.test import override_settings

from infrastructure.adapters.base import AdapterUnavailable, CommandOutcome
from infrastructure.adapters.registry import adapter_types
from infrastructure.models import AdapterCall, AdapterCallCounter, AdapterConfig
from infrastructure.services import adapter_for, adapter_for_mapping, simulator_connector_status_set
from tests.infrastructure_support import CCS, TYPE2, make_mapping


@pytest.mark.django_db
class TestSimulator:
    def test_registry_knows_the_builtin_types(self):
        assert "simulator" in adapter_types()

    def test_start_and_stop_are_accepted_with_a_deterministic_session_id(self, operator):
        adapter = adapter_for_mapping(make_mapping(operator))
        first = adapter.start_session(connector_id="1", session_id="chs_1")
        again = adapter.start_session(connector_id="1", session_id="chs_1")
        assert first.outcome is CommandOutcome.ACCEPTED and first.accepted
        assert first.cpms_session_id.startswith("SIM-") and first.cpms_session_id == again.cpms_session_id
        stop = adapter.stop_session(cpms_session_id=first.cpms_session_id, session_id="chs_1")
        assert stop.accepted

    def test_reject_prefix_rejects_commands(self, operator):
        adapter = adapter_for_mapping(make_mapping(operator, cpms_station_id="SIM-REJECT-1"))
        assert adapter.start_session(connector_id="1", session_id="chs_1").outcome is CommandOutcome.REJECTED
        assert adapter.stop_session(cpms_session_id="x", session_id="chs_1").outcome is CommandOutcome.REJECTED
        assert adapter.ping().ok
        assert AdapterCall.objects.filter(outcome="rejected", operation="start_session").count() == 1

    def test_timeout_prefix_times_out_commands(self, operator):
        adapter = adapter_for_mapping(make_mapping(operator, cpms_station_id="SIM-TIMEOUT-1"))
        assert adapter.start_session(connector_id="1", session_id="chs_1").outcome is CommandOutcome.TIMEOUT
        assert adapter.ping().ok is False
        with pytest.raises(AdapterUnavailable):
            adapter.fetch_connector_statuses()

    def test_fail_prefix_fails_commands(self, operator):
        adapter = adapter_for_mapping(make_mapping(operator, cpms_station_id="SIM-FAIL-1"))
        with pytest.raises(AdapterUnavailable) as raised:
            adapter.start_session(connector_id="1", session_id="chs_1")
        assert raised.value.reason == "failure"
        ping = adapter.ping()
        assert ping.ok is False and "failure" in ping.error

    def test_reports_charging_while_a_session_runs_and_set_statuses_otherwise(self, operator, running_sessions):
        mapping = make_mapping(operator, connectors=(CCS, TYPE2))
        simulator_connector_status_set(
            cpms_station_id="CP-1", connector_id="2", raw_status="Faulted", protocol="ocpp2.0.1"
        )
        running = running_sessions
        running[(mapping.pk, "1")] = "chs_running"
        reports = {r.connector_id: r for r in adapter_for_mapping(mapping).fetch_connector_statuses()}
        assert (reports["1"].status, reports["1"].raw_status) == ("CHARGING", "Charging")
        assert (reports["2"].status, reports["2"].protocol) == ("OUTOFORDER", "ocpp2.0.1")
        running.clear()
        reports = {r.connector_id: r for r in adapter_for_mapping(mapping).fetch_connector_statuses()}
        assert reports["1"].status == "AVAILABLE"

    def test_reports_only_connectors_of_live_mappings(self, operator):
        from infrastructure.services import mapping_delete

        mapping_delete(mapping=make_mapping(operator, station_id="OLD", connectors=(CCS, TYPE2)))
        mapping = make_mapping(operator, station_id="NEW")  # the same CPMS station, mapped again
        reports = adapter_for_mapping(mapping).fetch_connector_statuses()
        assert [r.connector_id for r in reports] == ["1"]


@pytest.mark.django_db
class TestCircuitBreaker:
    @override_settings(CPMS_CIRCUIT_FAILURE_THRESHOLD=3, CPMS_RETRY_BACKOFF=0)
    def test_opens_after_consecutive_failures_then_half_opens_and_closes(self, operator):
        mapping = make_mapping(operator, cpms_station_id="SIM-FAIL-1")
        AdapterConfig.objects.filter(operator=operator).delete()
        adapter = adapter_for_mapping(mapping)
        AdapterConfig.objects.filter(pk=adapter.guarded.config.pk).update(max_retries=0)
        adapter = adapter_for_mapping(mapping)
        for _ in range(3):
            assert adapter.ping().ok is False
        config = AdapterConfig.objects.get(operator=operator, adapter_type="simulator")
        assert (config.circuit_state, config.consecutive_failures) == ("open", 3)
        # Open: no call is made, even for a healthy station of the same adapter.
        healthy = adapter_for_mapping(make_mapping(operator, station_id="S2", cpms_station_id="CP-2"))
        with pytest.raises(AdapterUnavailable) as raised:
            healthy.start_session(connector_id="1", session_id="chs_1")
        assert raised.value.reason == "circuit_open"
        assert AdapterCall.objects.filter(outcome="circuit_open").count() == 1
        # After the reset timeout one trial goes through; it succeeds and closes the circuit.
        with override_settings(CPMS_CIRCUIT_RESET_TIMEOUT=0):
            assert healthy.start_session(connector_id="1", session_id="chs_1").accepted
        config.refresh_from_db()
        assert (config.circuit_state, config.consecutive_failures) == ("closed", 0)
        assert config.last_success_at and config.last_failure_at

    @override_settings(CPMS_CIRCUIT_FAILURE_THRESHOLD=2, CPMS_RETRY_BACKOFF=0)
    def test_failed_half_open_trial_opens_again(self, operator):
        mapping = make_mapping(operator, cpms_station_id="SIM-FAIL-1")
        adapter = adapter_for_mapping(mapping)
        AdapterConfig.objects.filter(pk=adapter.guarded.config.pk).update(max_retries=0)
        adapter = adapter_for_mapping(mapping)
        adapter.ping(), adapter.ping()
        with override_settings(CPMS_CIRCUIT_RESET_TIMEOUT=0):
            assert adapter.ping().ok is False
        assert AdapterConfig.objects.get(pk=adapter.guarded.config.pk).circuit_state == "open"

    @override_settings(CPMS_RETRY_BACKOFF=0)
    def test_reads_are_retried_commands_are_not(self, operator):
        adapter = adapter_for_mapping(make_mapping(operator, cpms_station_id="SIM-TIMEOUT-1"))
        assert adapter.guarded.config.max_retries == 2
        adapter.ping()
        assert AdapterCall.objects.filter(operation="ping", outcome="timeout").count() == 3
        adapter.start_session(connector_id="1", session_id="chs_1")
        assert AdapterCall.objects.filter(operation="start_session", outcome="timeout").count() == 1
        counter = AdapterCallCounter.objects.get(adapter_type="simulator", operation="ping", outcome="timeout")
        assert counter.count == 3

    def test_disabled_adapter_is_unavailable(self, operator):
        adapter = adapter_for(operator_id=operator.pk, adapter_type="simulator")
        AdapterConfig.objects.filter(pk=adapter.config.pk).update(enabled=False)
        adapter = adapter_for(operator_id=operator.pk, adapter_type="simulator")
        with pytest.raises(AdapterUnavailable) as raised:
            adapter.start_session(cpms_station_id="CP-1", connector_id="1", session_id="chs_1")
        assert raised.value.reason == "disabled"
