"""Reads of the infrastructure app, including the seams the charging app fills (in `charging.apps`): which
connectors have a running charge session, and which tariff a station uses. infrastructure never imports
charging; what it needs to know of it is registered here."""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, QuerySet
from django.utils import timezone

from .adapters.registry import adapter_config_defaults, adapter_types
from .models import (
    AdapterCall,
    AdapterCallCounter,
    AdapterConfig,
    AdapterHealth,
    CallOutcome,
    CircuitState,
    Connector,
    OcpiStatus,
    SimulatedConnectorState,
    StationMapping,
)
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


# --- station tariffs (kept by the charging app) -----------------------------------------------------------


@dataclass(frozen=True)
class StationTariffLink:
    """What the app that prices sessions answers about a mapping's `tariff_id` (shown and taken by the mapping
    API). Every function takes and returns ids only."""

    #: mapping ids -> {mapping_id: "trf_..."} for the mappings that have a tariff of their own. One query.
    tariff_ids: Callable[[list[str]], dict[str, str]]
    #: (operator_id, tariff_id) -> whether the operator has that tariff.
    tariff_exists: Callable[[str, str], bool]
    #: (mapping_id, tariff_id or None) -> None: set or clear, inside the caller's transaction.
    tariff_set: Callable[[str, str | None], None]
    #: operator_id (None: every operator) -> [(tariff_id, label)] for the admin's choice.
    tariff_choices: Callable[[str | None], list[tuple[str, str]]]


_station_tariff_links: list[StationTariffLink] = []


def station_tariff_link_register(link: StationTariffLink) -> None:
    """The charging app calls this once (in its AppConfig.ready)."""
    _station_tariff_links[:] = [link]


def station_tariff_link() -> StationTariffLink | None:
    return _station_tariff_links[0] if _station_tariff_links else None


def station_tariff_ids(*, mapping_ids: Iterable[str]) -> dict[str, str]:
    link, mapping_ids = station_tariff_link(), list(dict.fromkeys(mapping_ids))
    return link.tariff_ids(mapping_ids) if link is not None and mapping_ids else {}


def station_tariff_exists(*, operator_id: str, tariff_id: str) -> bool:
    link = station_tariff_link()
    return link is not None and link.tariff_exists(operator_id, tariff_id)


def station_tariff_choices(*, operator_id: str | None) -> list[tuple[str, str]]:
    link = station_tariff_link()
    return link.tariff_choices(operator_id) if link is not None else []


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
        live_connectors()
        .filter(
            operator_id=operator_id, mapping__adapter_type="simulator", mapping__cpms_station_id__in=cpms_station_ids
        )
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
        states.append(
            SimulatedConnector(
                station, connector_id, evse_uid, protocol, raw, to_ocpi_status(protocol=protocol, raw_status=raw)
            )
        )
    return states


# --- connectors, health ---------------------------------------------------------------------------------


def live_connectors() -> QuerySet[Connector]:
    """Connectors of mappings that are not deleted (the base of every connector read)."""
    return Connector.objects.filter(mapping__deleted_at__isnull=True)


def connector_summary(*, operator_id: str) -> dict:
    """GET /connectors/summary in two queries, whatever the number of connectors."""
    by_status = {status: 0 for status in OcpiStatus.values}
    by_adapter = {adapter_type: 0 for adapter_type in adapter_types()}
    rows = (
        live_connectors()
        .filter(operator_id=operator_id)
        .values_list("status", "mapping__adapter_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, adapter_type, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_adapter[adapter_type] = by_adapter.get(adapter_type, 0) + n
    total = sum(by_status.values())
    stations = StationMapping.objects.live().filter(operator_id=operator_id).count()
    return {
        "total": total,
        "by_status": by_status,
        "by_adapter": by_adapter,
        "stations": stations,
        "available_ratio": round(by_status[OcpiStatus.AVAILABLE] / total, 4) if total else 0.0,
    }


_ERROR_OUTCOMES = (CallOutcome.FAILURE, CallOutcome.TIMEOUT)
HEALTH_WINDOW = timedelta(minutes=5)


def _recent_call_figures(operator_id: str, adapter_type: str | None = None) -> dict[str, dict]:
    """{adapter_type: {requests, errors, p95}} over the last 5 minutes, in one query. Calls refused by an
    open circuit reached no CPMS and are not counted as requests."""
    calls = AdapterCall.objects.filter(operator_id=operator_id, created_at__gte=timezone.now() - HEALTH_WINDOW).exclude(
        outcome=CallOutcome.CIRCUIT_OPEN
    )
    if adapter_type is not None:
        calls = calls.filter(adapter_type=adapter_type)
    figures: dict[str, dict] = {}
    if connection.vendor == "postgresql":
        rows = (
            calls.values("adapter_type")
            .order_by()
            .annotate(
                requests=Count("id"),
                errors=Count("id", filter=Q(outcome__in=_ERROR_OUTCOMES)),
                p95=Percentile95("latency_ms"),
            )
        )
        for row in rows:
            figures[row["adapter_type"]] = {
                "requests": row["requests"],
                "errors": row["errors"],
                "p95": None if row["p95"] is None else int(round(row["p95"])),
            }
        return figures
    # SQLite (make run) has no percentile aggregate: the window's latencies are few; rank them here.
    samples: dict[str, list] = {}
    for kind, outcome, latency in calls.values_list("adapter_type", "outcome", "latency_ms"):
        samples.setdefault(kind, []).append((outcome, latency))
    for kind, kind_samples in samples.items():
        latencies = sorted(latency for _, latency in kind_samples)
        rank = max(0, math.ceil(0.95 * len(latencies)) - 1)
        figures[kind] = {
            "requests": len(kind_samples),
            "errors": sum(1 for o, _ in kind_samples if o in _ERROR_OUTCOMES),
            "p95": latencies[rank],
        }
    return figures


class Percentile95(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _health_status(*, enabled: bool, circuit: str, requests: int, errors: int) -> str:
    if not enabled:
        return AdapterHealth.DISABLED
    if circuit == CircuitState.OPEN:
        return AdapterHealth.DOWN
    if circuit == CircuitState.HALF_OPEN or (requests and errors / requests >= settings.CPMS_DEGRADED_ERROR_RATE):
        return AdapterHealth.DEGRADED
    return AdapterHealth.HEALTHY


def adapter_health(*, operator_id: str, adapter_type: str | None = None) -> list[dict]:
    """GET /adapters/health: one entry per adapter type, in three queries. An adapter type the operator never
    configured shows its defaults (nothing is created by a read)."""
    types = [adapter_type] if adapter_type else adapter_types()
    configs = {c.adapter_type: c for c in AdapterConfig.objects.filter(operator_id=operator_id, adapter_type__in=types)}
    figures = _recent_call_figures(operator_id, adapter_type)
    stations = dict(
        StationMapping.objects.live()
        .filter(operator_id=operator_id, adapter_type__in=types)
        .values_list("adapter_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    entries = []
    for kind in types:
        config = configs.get(kind)
        enabled = config.enabled if config else kind == settings.CPMS_DEFAULT_ADAPTER
        circuit = config.circuit_state if config else CircuitState.CLOSED
        fig = figures.get(kind, {"requests": 0, "errors": 0, "p95": None})
        entries.append(
            {
                "adapter_type": kind,
                "enabled": enabled,
                "status": _health_status(
                    enabled=enabled, circuit=circuit, requests=fig["requests"], errors=fig["errors"]
                ),
                "circuit": circuit,
                "last_success_at": config.last_success_at if config else None,
                "last_failure_at": config.last_failure_at if config else None,
                "requests_5m": fig["requests"],
                "error_rate_5m": round(fig["errors"] / fig["requests"], 4) if fig["requests"] else 0.0,
                "p95_latency_ms_5m": fig["p95"],
                "mapped_stations": stations.get(kind, 0),
            }
        )
    return entries


def adapter_configs(*, operator_id: str) -> list[AdapterConfig]:
    """GET /config: the operator's config of every adapter type; unsaved defaults for types never configured."""
    configs = {
        c.adapter_type: c
        for c in AdapterConfig.objects.filter(operator_id=operator_id).select_related("ocpi_registration")
    }
    return [
        configs.get(kind) or AdapterConfig(operator_id=operator_id, adapter_type=kind, **adapter_config_defaults(kind))
        for kind in adapter_types()
    ]


def adapter_configs_due_for_poll(*, now: datetime | None = None) -> list[AdapterConfig]:
    """Enabled configs whose poll_interval_s has passed since their last poll (all operators)."""
    now = now or timezone.now()
    return [
        c
        for c in AdapterConfig.objects.filter(enabled=True)
        if c.last_polled_at is None or c.last_polled_at + timedelta(seconds=c.poll_interval_s) <= now
    ]


# --- Prometheus (metrics endpoint) --------------------------------------------------------------------------


def connector_counts_by_status(*, operator_id: str | None = None) -> dict[str, int]:
    """Connectors of one operator, or of every operator, by OCPI status (every status present, zeros included)."""
    connectors = live_connectors() if operator_id is None else live_connectors().filter(operator_id=operator_id)
    counts = {status: 0 for status in OcpiStatus.values}
    counts.update(dict(connectors.values_list("status").annotate(n=Count("id")).order_by()))
    return counts


def adapter_call_totals() -> list[dict]:
    """Lifetime adapter call counters: [{adapter_type, operation, outcome, count, latency_ms_sum}] (monotonic,
    whichever process made the calls)."""
    return [
        dict(row)
        for row in AdapterCallCounter.objects.order_by("adapter_type", "operation", "outcome").values(
            "adapter_type", "operation", "outcome", "count", "latency_ms_sum"
        )
    ]


def adapter_circuit_counts(*, operator_id: str | None = None) -> dict[tuple[str, str], int]:
    """{(adapter_type, circuit state): enabled configs} of one operator, or over every operator (every state
    present)."""
    configs = AdapterConfig.objects.filter(enabled=True)
    if operator_id is not None:
        configs = configs.filter(operator_id=operator_id)
    counts = {(kind, state): 0 for kind in adapter_types() for state in CircuitState.values}
    counts.update(
        {
            (kind, state): n
            for kind, state, n in configs.values_list("adapter_type", "circuit_state")
            .annotate(n=Count("id"))
            .order_by()
        }
    )
    return counts


def adapters_health_component(*, operator_id: str) -> dict:
    """The `cpms_adapters` component of /health/detailed (the caller's operator): `degraded` while any of its
    enabled adapters has an open circuit."""
    counts = adapter_circuit_counts(operator_id=operator_id)
    open_circuits = sum(n for (_, state), n in counts.items() if state == CircuitState.OPEN)
    by_type: dict[str, dict[str, int]] = {}
    for (kind, state), n in counts.items():
        by_type.setdefault(kind, {})[state] = n
    return {"status": "degraded" if open_circuits else "ok", "open_circuits": open_circuits, "circuits": by_type}


def dashboard_panels(*, operator_id: str | None, since: datetime) -> list[Any]:
    """Connectors by OCPI status (of one operator, or of all for a superuser)."""
    from evpay.core.panels import Panel

    counts = connector_counts_by_status(operator_id=operator_id)
    return [Panel("Connectors by status", list(counts.items()))]
