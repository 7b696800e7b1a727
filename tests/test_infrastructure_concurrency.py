"""Real threads, real PostgreSQL connections: parallel writes to one station resolve to one winner."""

import pytest
from rest_framework.test import APIClient

from infrastructure.adapters.base import ConnectorStatusReport
from infrastructure.models import AdapterCall, AdapterConfig, Connector, StationMapping
from infrastructure.services import (
    adapter_config_ensure,
    adapter_for_mapping,
    adapter_poll_claim,
    connector_statuses_apply,
)
from tests.infrastructure_support import CCS, make_mapping
from tests.test_infrastructure_api import MAPPINGS
from webhooks.models import Event

N = 12


def _call(raw_key, method, path, body=None):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    return getattr(client, method)(path, body, format="json").status_code


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_of_one_station_one_wins(client, parallel):
    body = {"station_id": "DE*ABC*S1", "adapter_type": "simulator", "cpms_station_id": "CP-1", "connectors": [CCS]}
    statuses = parallel(lambda i: _call(client.raw_key, "post", MAPPINGS, body), N)
    assert sorted(statuses) == [201] + [409] * (N - 1), statuses
    assert StationMapping.objects.count() == 1 and Connector.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_deletes_one_wins(client, operator, parallel):
    mapping = make_mapping(operator)
    statuses = parallel(lambda i: _call(client.raw_key, "delete", f"{MAPPINGS}/{mapping.pk}"), N)
    assert sorted(statuses) == [204] + [404] * (N - 1), statuses


@pytest.mark.django_db(transaction=True)
def test_parallel_applies_of_one_change_emit_one_event(operator, parallel):
    make_mapping(operator, is_active=False)  # no status fetch of the new mapping by a worker meanwhile
    report = ConnectorStatusReport(
        cpms_station_id="CP-1", connector_id="1", status="CHARGING", protocol="ocpi", raw_status="CHARGING"
    )
    changes = parallel(
        lambda i: connector_statuses_apply(operator_id=operator.pk, adapter_type="simulator", reports=[report]), N
    )
    assert sum(changes) == 1, changes
    assert Event.objects.filter(type="infrastructure.connector_status_changed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_poll_claim_per_interval(operator, parallel):
    config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
    assert sum(parallel(lambda i: adapter_poll_claim(config=config), N)) == 1


@pytest.mark.django_db(transaction=True)
def test_circuit_counts_failures_from_parallel_callers(operator, parallel, settings):
    settings.CPMS_RETRY_BACKOFF = 0
    # Inactive: no status fetch of a new mapping (by the worker) adds its own failure to the count.
    mapping = make_mapping(operator, cpms_station_id="SIM-FAIL-1", is_active=False)
    config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
    AdapterConfig.objects.filter(pk=config.pk).update(max_retries=0)
    parallel(lambda i: adapter_for_mapping(mapping).ping(), N)
    config.refresh_from_db()
    made = AdapterCall.objects.filter(outcome="failure").count()
    assert config.circuit_state == "open"
    assert config.consecutive_failures == made >= settings.CPMS_CIRCUIT_FAILURE_THRESHOLD
    assert made + AdapterCall.objects.filter(outcome="circuit_open").count() == N


@pytest.mark.django_db(transaction=True)
def test_status_apply_does_not_wait_for_a_locked_mapping(operator):
    """A session start or mapping change holds the mapping row (then the connector); the poll locks connectors
    only, so it never takes the two in the opposite order."""
    from tests.charging_support import held_open_elsewhere

    mapping = make_mapping(operator, is_active=False)  # no status fetch of the new mapping by a worker meanwhile
    report = ConnectorStatusReport(
        cpms_station_id="CP-1", connector_id="1", status="OUTOFORDER", protocol="ocpi", raw_status="OUTOFORDER"
    )

    def lock_mapping():
        list(StationMapping.objects.select_for_update(no_key=True).filter(pk=mapping.pk))

    with held_open_elsewhere(lock_mapping):
        assert connector_statuses_apply(operator_id=operator.pk, adapter_type="simulator", reports=[report]) == 1
    assert Connector.objects.get(mapping=mapping).status == "OUTOFORDER"
