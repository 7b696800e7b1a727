"""Shared by the infrastructure tests: connector specs, a mapping factory and a stand-in for the charging
app's lookup of running sessions."""

from decimal import Decimal

import pytest

from infrastructure.selectors import active_session_source_register, active_session_source_unregister
from infrastructure.services import mapping_create

CCS = {
    "connector_id": "1",
    "evse_uid": "DE*ABC*E1",
    "standard": "IEC_62196_T2_COMBO",
    "power_type": "DC",
    "max_power_kw": 150,
}
TYPE2 = {
    "connector_id": "2",
    "evse_uid": "DE*ABC*E2",
    "standard": "IEC_62196_T2",
    "power_type": "AC_3_PHASE",
    "max_power_kw": 22,
}


def make_mapping(
    operator, station_id="DE*ABC*S1", adapter_type="simulator", cpms_station_id="CP-1", connectors=(CCS,), **kwargs
):
    return mapping_create(
        operator=operator,
        station_id=station_id,
        adapter_type=adapter_type,
        cpms_station_id=cpms_station_id,
        connectors=[{**c, "max_power_kw": Decimal(str(c["max_power_kw"]))} for c in connectors],
        **kwargs,
    )


@pytest.fixture
def running_sessions():
    """{(mapping_id, connector_id): "chs_..."}: what the charging app's registered lookup would answer."""
    running: dict[tuple[str, str], str] = {}

    def source(mapping_ids):
        return {key: value for key, value in running.items() if key[0] in mapping_ids}

    active_session_source_register(source)
    yield running
    active_session_source_unregister(source)
