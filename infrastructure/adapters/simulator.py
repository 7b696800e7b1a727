"""The `simulator` CPMS: in-process and deterministic, the default adapter for new operators and `make run`.

It plays a CPMS whose charge points speak OCPP: it accepts start/stop commands, reports every connector
of its mapped stations (CHARGING while one of our sessions runs on it, else the value set with
`simulator_connector_status_set`, else OCPP 1.6 `Available`). Failure conventions, by `cpms_station_id`
prefix (case-insensitive), so every failure path can be exercised:

    SIM-REJECT...   start/stop answered `rejected` (the charger refuses); ping and statuses work
    SIM-TIMEOUT...  every call for the station times out (AdapterTimeout; a command -> `timeout`)
    SIM-FAIL...     every call for the station fails (AdapterError, as a CPMS answering 5xx)

The setting CPMS_SIMULATOR_MODE (`fail` | `timeout`, default empty) does the same for every call,
including the station-less health ping.
"""

import hashlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings

from .base import (
    AdapterError,
    AdapterTimeout,
    CommandOutcome,
    CommandResult,
    ConnectorStatusReport,
    CpmsAdapter,
    PingResult,
)

REJECT_PREFIX = "SIM-REJECT"
TIMEOUT_PREFIX = "SIM-TIMEOUT"
FAIL_PREFIX = "SIM-FAIL"


def _check_reachable(cpms_station_id: str | None) -> None:
    mode = (settings.CPMS_SIMULATOR_MODE or "").lower()
    station = (cpms_station_id or "").upper()
    if mode == "timeout" or station.startswith(TIMEOUT_PREFIX):
        raise AdapterTimeout(f"simulated CPMS timed out (station {cpms_station_id})")
    if mode == "fail" or station.startswith(FAIL_PREFIX):
        raise AdapterError(f"simulated CPMS failure (station {cpms_station_id})")


def _rejects(cpms_station_id: str) -> bool:
    return cpms_station_id.upper().startswith(REJECT_PREFIX)


class SimulatorAdapter(CpmsAdapter):
    adapter_type = "simulator"
    config_defaults = {"poll_interval_s": 60}

    def start_session(self, *, cpms_station_id, connector_id, evse_uid, session_id):
        _check_reachable(cpms_station_id)
        if _rejects(cpms_station_id):
            return CommandResult(CommandOutcome.REJECTED, message="The simulated charger rejected the start.")
        digest = hashlib.sha256(f"{cpms_station_id}:{connector_id}:{session_id}".encode()).hexdigest()[:16]
        return CommandResult(CommandOutcome.ACCEPTED, cpms_session_id=f"SIM-{digest}")

    def stop_session(self, *, cpms_station_id, cpms_session_id, session_id):
        _check_reachable(cpms_station_id)
        if _rejects(cpms_station_id):
            return CommandResult(
                CommandOutcome.REJECTED,
                cpms_session_id=cpms_session_id,
                message="The simulated charger rejected the stop.",
            )
        return CommandResult(CommandOutcome.ACCEPTED, cpms_session_id=cpms_session_id)

    #: Where the simulated CPMS keeps its charge points: fn(*, operator_id, cpms_station_ids) -> states with
    #: cpms_station_id, connector_id, evse_uid, status, protocol, raw_status. Set in
    #: `InfrastructureConfig.ready()` to `selectors.simulator_connector_states` (adapters sit below the app's
    #: selectors and never import them).
    connector_states: ClassVar[Callable[..., list[Any]] | None] = None

    def fetch_connector_statuses(self, *, cpms_station_ids):
        if SimulatorAdapter.connector_states is None:
            raise AdapterError("the simulator has no connector state source (InfrastructureConfig.ready sets it)")
        # A station that fails is left out of a multi-station report (as a CPMS would skip it); asked
        # alone, it fails the call.
        reachable = []
        for station in cpms_station_ids:
            try:
                _check_reachable(station)
                reachable.append(station)
            except AdapterError:
                if len(cpms_station_ids) == 1 or settings.CPMS_SIMULATOR_MODE:
                    raise
        states = SimulatorAdapter.connector_states(operator_id=self.settings.operator_id, cpms_station_ids=reachable)
        return [
            ConnectorStatusReport(
                cpms_station_id=s.cpms_station_id,
                connector_id=s.connector_id,
                evse_uid=s.evse_uid,
                status=s.status,
                protocol=s.protocol,
                raw_status=s.raw_status,
            )
            for s in states
        ]

    def ping(self, *, cpms_station_id=None):
        started = time.monotonic()
        _check_reachable(cpms_station_id)
        return PingResult(ok=True, latency_ms=int((time.monotonic() - started) * 1000))
