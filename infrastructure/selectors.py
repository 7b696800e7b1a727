"""Reads of the infrastructure app, including the seam the charging app fills: which connectors have a
running charge session."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .models import Connector, SimulatedConnectorState
from .statuses import OCPP16, to_ocpi_status

# --- running sessions (filled in by the charging app) ----------------------------------------------------

#: fn(mapping_ids) -> {(mapping_id, connector_id): "chs_..."} for sessions running (pending, charging,
#: stopping) on connectors of those mappings. One query, whatever the number of mappings.
ActiveSessionSource = Callable[[list[str]], dict[tuple[str, str], str]]
_active_session_sources: list[ActiveSessionSource] = []


def active_session_source_register(source: ActiveSessionSource) -> None:
    """The charging app calls this once (in its AppConfig.ready) with its lookup of running sessions."""
    if source not in _active_session_sources:
        _active_session_sources.append(source)


def active_session_source_unregister(source: ActiveSessionSource) -> None:
    if source in _active_session_sources:
        _active_session_sources.remove(source)


def active_sessions_by_connector(*, mapping_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    mapping_ids = list(dict.fromkeys(mapping_ids))
    found: dict[tuple[str, str], str] = {}
    if not mapping_ids:
        return found
    for source in _active_session_sources:
        found.update(source(mapping_ids))
    return found


def mapping_has_running_session(*, mapping_id: str) -> bool:
    return bool(active_sessions_by_connector(mapping_ids=[mapping_id]))


# --- simulator ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulatedConnector:
    cpms_station_id: str
    connector_id: str
    evse_uid: str
    protocol: str
    raw_status: str
    status: str


def simulator_connector_states(*, operator_id: str, cpms_station_ids: list[str]) -> list[SimulatedConnector]:
    """What the simulator CPMS reports for the operator's simulator-mapped connectors of these stations."""
    connectors = list(
        Connector.objects.filter(operator_id=operator_id, mapping__adapter_type="simulator",
                                 mapping__cpms_station_id__in=cpms_station_ids)
        .values_list("mapping_id", "mapping__cpms_station_id", "connector_id", "evse_uid")
    )
    overrides = {
        (s.cpms_station_id, s.connector_id): (s.protocol, s.raw_status)
        for s in SimulatedConnectorState.objects.filter(cpms_station_id__in=cpms_station_ids)
    }
    running = active_sessions_by_connector(mapping_ids=[c[0] for c in connectors])
    states = []
    for mapping_id, station, connector_id, evse_uid in connectors:
        if (mapping_id, connector_id) in running:
            protocol, raw = OCPP16, "Charging"
        else:
            protocol, raw = overrides.get((station, connector_id), (OCPP16, "Available"))
        states.append(SimulatedConnector(station, connector_id, evse_uid, protocol, raw,
                                         to_ocpi_status(protocol=protocol, raw_status=raw)))
    return states
