"""Infrastructure writes: mappings and their connectors, adapter configuration, connector statuses,
connectivity tests. Adapter calls happen outside any transaction; their results are recorded after."""

import logging
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from evpay.core.errors import DomainError, NotFound, ValidationFailed
from evpay.core.models import Operator
from evpay.core.pruning import prune_in_batches
from evpay.core.updates import model_update

from .adapters.base import AdapterUnavailable, ConnectorStatusReport
from .adapters.guard import GuardedAdapter, StationAdapter, adapter_refusal
from .adapters.registry import adapter_config_defaults, adapter_requires_base_url, adapter_types, is_adapter_type
from .credentials import credentials_encrypt
from .events import adapter_status_changed_emit, connectivity_tested_emit, connector_status_changed_emit
from .models import (
    AdapterCall,
    AdapterConfig,
    CircuitState,
    ConnectivityTestStatus,
    Connector,
    OcpiStatus,
    SimulatedConnectorState,
    StationMapping,
)
from .selectors import (
    active_sessions_by_connector,
    adapter_health,
    live_connectors,
    station_tariff_exists,
    station_tariff_link,
)
from .statuses import PROTOCOLS

logger = logging.getLogger(__name__)

UNSET = object()


def adapter_config_ensure(*, operator_id: str, adapter_type: str) -> AdapterConfig:
    """The operator's config of this adapter type, created with defaults on first use (enabled when it is
    CPMS_DEFAULT_ADAPTER)."""
    config = AdapterConfig.objects.filter(operator_id=operator_id, adapter_type=adapter_type).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            return AdapterConfig.objects.create(
                operator_id=operator_id, adapter_type=adapter_type, **adapter_config_defaults(adapter_type)
            )
    except IntegrityError:  # created meanwhile by another request
        return AdapterConfig.objects.get(operator_id=operator_id, adapter_type=adapter_type)


def adapter_for(*, operator_id: str, adapter_type: str) -> GuardedAdapter:
    """The guarded adapter of an operator's adapter type (its AdapterConfig is created with defaults if absent)."""
    return GuardedAdapter(adapter_config_ensure(operator_id=operator_id, adapter_type=adapter_type))


def adapter_for_mapping(mapping: StationMapping) -> StationAdapter:
    """The guarded adapter of one mapped station: `adapter_for_mapping(mapping).start_session(...)`."""
    return StationAdapter(mapping, adapter_for(operator_id=mapping.operator_id, adapter_type=mapping.adapter_type))


def simulator_connector_status_set(
    *, cpms_station_id: str, connector_id: str, raw_status: str, protocol: str = "ocpp1.6"
) -> None:
    """Tell the simulator CPMS what to report for a connector from now on (tests, demo)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}")
    SimulatedConnectorState.objects.update_or_create(
        cpms_station_id=cpms_station_id,
        connector_id=connector_id,
        defaults={"protocol": protocol, "raw_status": raw_status},
    )


# --- mappings ------------------------------------------------------------------------------------------


class MappingExists(DomainError):
    status_code, code, title = 409, "mapping_exists", "Mapping exists"


class MappingInUse(DomainError):
    status_code, code, title = 409, "mapping_in_use", "Mapping in use"


class CpmsUnavailable(DomainError):
    status_code, code, title = 503, "cpms_unavailable", "CPMS unavailable"


def _check_adapter_type(adapter_type: str) -> None:
    if not is_adapter_type(adapter_type):
        raise ValidationFailed(
            f"Unknown adapter_type {adapter_type!r}; one of: {', '.join(adapter_types())}.",
            errors={"adapter_type": [f"Unknown adapter type {adapter_type!r}."]},
        )


def _check_tariff(operator_id: str, tariff_id: str | None) -> None:
    if tariff_id is not None and not station_tariff_exists(operator_id=operator_id, tariff_id=tariff_id):
        raise ValidationFailed(f"No tariff {tariff_id!r}.", errors={"tariff_id": ["Unknown tariff."]})


def _tariff_set(mapping: StationMapping, tariff_id: str | None) -> None:
    """The mapping's own tariff, kept by the charging app (see `selectors.StationTariffLink`)."""
    link = station_tariff_link()
    if link is not None:
        link.tariff_set(mapping.pk, tariff_id)
    elif tariff_id is not None:
        raise ValidationFailed("No app keeps station tariffs.", errors={"tariff_id": ["Unknown tariff."]})


def _station_taken(operator_id: str, station_id: str, exclude_pk: str | None = None) -> bool:
    return (
        StationMapping.objects.live()
        .filter(operator_id=operator_id, station_id=station_id)
        .exclude(pk=exclude_pk)
        .exists()
    )


CONNECTOR_FIELDS = ("evse_uid", "standard", "power_type", "max_power_kw")


def _connectors_replace(mapping: StationMapping, connectors: list[dict]) -> None:
    """Make the mapping's connectors exactly `connectors`: kept ones (same connector_id) keep their status,
    missing ones are removed (refused while a session runs on one), new ones start UNKNOWN."""
    existing = {c.connector_id: c for c in mapping.connectors.select_for_update()}
    wanted = {c["connector_id"]: c for c in connectors}
    removed = [cid for cid in existing if cid not in wanted]
    if removed:
        running = active_sessions_by_connector(mapping_ids=[mapping.pk])
        busy = sorted(cid for cid in removed if (mapping.pk, cid) in running)
        if busy:
            raise MappingInUse(
                f"A charge session runs on connector {', '.join(busy)} of {mapping.station_id}; "
                "it cannot be removed until the session ends."
            )
        Connector.objects.filter(mapping=mapping, connector_id__in=removed).delete()
    for connector_id, spec in wanted.items():
        fields = {k: spec[k] for k in CONNECTOR_FIELDS if k in spec}
        if connector_id in existing:
            connector = existing[connector_id]
            changed = model_update(instance=connector, fields=CONNECTOR_FIELDS, data=fields)
            if changed:
                connector.save(update_fields=[*changed, "updated_at"])
        else:
            Connector.objects.create(
                mapping=mapping, operator_id=mapping.operator_id, connector_id=connector_id, **fields
            )


def mapping_create(
    *,
    operator: Operator,
    station_id: str,
    adapter_type: str,
    cpms_station_id: str,
    tariff_id: str | None = None,
    is_active: bool = True,
    connectors: list[dict] | None = None,
    metadata: dict | None = None,
) -> StationMapping:
    _check_adapter_type(adapter_type)
    _check_tariff(operator.pk, tariff_id)
    if _station_taken(operator.pk, station_id):
        raise MappingExists(f"Station {station_id!r} is mapped already.")
    try:
        with transaction.atomic():
            mapping = StationMapping.objects.create(
                operator=operator,
                station_id=station_id,
                adapter_type=adapter_type,
                cpms_station_id=cpms_station_id,
                is_active=is_active,
                metadata=metadata or {},
            )
            if tariff_id is not None:
                _tariff_set(mapping, tariff_id)
            _connectors_replace(mapping, connectors or [])
            _enqueue_status_fetch(mapping)
    except IntegrityError:  # a parallel create of the same station won
        raise MappingExists(f"Station {station_id!r} is mapped already.") from None
    adapter_config_ensure(operator_id=operator.pk, adapter_type=adapter_type)
    return mapping


def _enqueue_status_fetch(mapping: StationMapping) -> None:
    """A new or changed mapping asks its CPMS for its connectors' statuses at once (after commit), not only at
    the next poll."""
    from .tasks import mapping_statuses_fetch

    mapping_id = mapping.pk
    transaction.on_commit(lambda: mapping_statuses_fetch.delay(mapping_id))


def mapping_update(
    *,
    mapping: StationMapping,
    station_id: str | None = None,
    adapter_type: str | None = None,
    cpms_station_id: str | None = None,
    tariff_id: str | None | object = UNSET,
    is_active: bool | None = None,
    connectors: list[dict] | None = None,
    metadata: dict | None = None,
) -> StationMapping:
    """Change the given fields only (PATCH). `tariff_id=None` clears the station's own tariff."""
    if adapter_type is not None:
        _check_adapter_type(adapter_type)
    if tariff_id is not UNSET:
        _check_tariff(mapping.operator_id, tariff_id)  # type: ignore[arg-type]
    try:
        with transaction.atomic():
            mapping = _lock_mapping(mapping)
            if station_id is not None and station_id != mapping.station_id:
                if _station_taken(mapping.operator_id, station_id, exclude_pk=mapping.pk):
                    raise MappingExists(f"Station {station_id!r} is mapped already.")
                mapping.station_id = station_id
            moves = adapter_type not in (None, mapping.adapter_type) or cpms_station_id not in (
                None,
                mapping.cpms_station_id,
            )
            if moves and active_sessions_by_connector(mapping_ids=[mapping.pk]):
                # The running session's stop command must reach the CPMS that started it.
                raise MappingInUse(
                    f"A charge session runs at {mapping.station_id}; its adapter_type and "
                    "cpms_station_id cannot change until it ends."
                )
            model_update(
                instance=mapping,
                fields=("adapter_type", "cpms_station_id", "is_active", "metadata"),
                data={
                    "adapter_type": adapter_type,
                    "cpms_station_id": cpms_station_id,
                    "is_active": is_active,
                    "metadata": metadata,
                },
            )
            mapping.save()
            if tariff_id is not UNSET:
                _tariff_set(mapping, tariff_id)  # type: ignore[arg-type]
            if connectors is not None:
                _connectors_replace(mapping, connectors)
            _enqueue_status_fetch(mapping)
    except IntegrityError:
        raise MappingExists(f"Station {station_id!r} is mapped already.") from None
    if adapter_type is not None:
        adapter_config_ensure(operator_id=mapping.operator_id, adapter_type=adapter_type)
    return mapping


def mapping_delete(*, mapping: StationMapping) -> None:
    """Soft delete; refused (409 `mapping_in_use`) while a charge session runs on one of its connectors.
    The mapping row and its connectors are locked, so a session start that locks its connector either
    sees the mapping deleted or makes this wait and then refuse."""
    with transaction.atomic():
        mapping = _lock_mapping(mapping)
        list(mapping.connectors.select_for_update())
        running = active_sessions_by_connector(mapping_ids=[mapping.pk])
        if running:
            sessions = ", ".join(sorted(running.values()))
            raise MappingInUse(
                f"Station {mapping.station_id} has a charge session running ({sessions}); "
                "delete the mapping after it ends."
            )
        mapping.deleted_at = timezone.now()
        mapping.is_active = False
        mapping.save(update_fields=["deleted_at", "is_active", "updated_at"])


def _lock_mapping(mapping: StationMapping) -> StationMapping:
    locked = StationMapping.objects.live().select_for_update().filter(pk=mapping.pk).first()
    if locked is None:
        raise NotFound(f"No station mapping {mapping.pk!r}.")
    return locked


# --- connectivity tests --------------------------------------------------------------------------------


def mapping_connectivity_test_request(*, mapping: StationMapping) -> StationMapping:
    """Mark the test pending and enqueue it (after commit). The worker records the result."""
    from .tasks import mapping_connectivity_test

    with transaction.atomic():
        mapping = _lock_mapping(mapping)
        mapping.connectivity_test_status = ConnectivityTestStatus.PENDING
        mapping.connectivity_test_latency_ms = None
        mapping.connectivity_test_error = ""
        mapping.connectivity_tested_at = None
        mapping.save()
        mapping_id = mapping.pk
        transaction.on_commit(lambda: mapping_connectivity_test.delay(mapping_id))
    return mapping


def mapping_connectivity_test_run(*, mapping: StationMapping) -> StationMapping:
    """Ping the station through its adapter (no transaction held), then record the result and its event."""
    result = adapter_for_mapping(mapping).ping()
    with transaction.atomic():
        mapping = _lock_mapping(mapping)
        mapping.connectivity_test_status = (
            ConnectivityTestStatus.SUCCEEDED if result.ok else ConnectivityTestStatus.FAILED
        )
        mapping.connectivity_test_latency_ms = result.latency_ms
        mapping.connectivity_test_error = (result.error or "")[:500]
        mapping.connectivity_tested_at = timezone.now()
        mapping.save()
        connectivity_tested_emit(mapping=mapping)
    return mapping


# --- adapter configuration -----------------------------------------------------------------------------


def adapter_config_update(
    *,
    operator: Operator,
    adapter_type: str,
    enabled: bool | None = None,
    base_url: str | None = None,
    timeout_ms: int | None = None,
    max_retries: int | None = None,
    poll_interval_s: int | None = None,
    credentials: dict | None | object = UNSET,
) -> AdapterConfig:
    """PATCH /config/{adapter_type}. `credentials=None` removes them. A change of where or how the adapter
    connects (enabled, base_url, credentials) closes the circuit: the old failures say nothing about it."""
    if not is_adapter_type(adapter_type):
        raise NotFound(f"No adapter type {adapter_type!r}; one of: {', '.join(adapter_types())}.")
    adapter_config_ensure(operator_id=operator.pk, adapter_type=adapter_type)
    with transaction.atomic():
        config = AdapterConfig.objects.select_for_update().get(operator=operator, adapter_type=adapter_type)
        changes = {
            "enabled": enabled,
            "base_url": base_url,
            "timeout_ms": timeout_ms,
            "max_retries": max_retries,
            "poll_interval_s": poll_interval_s,
        }
        changed = model_update(instance=config, fields=changes, data=changes)
        connection_changed = bool({"enabled", "base_url"} & set(changed))
        if credentials is not UNSET:
            config.credentials_encrypted = credentials_encrypt(cast(dict | None, credentials))
            connection_changed = True
        if config.enabled and adapter_requires_base_url(adapter_type) and not config.base_url:
            raise ValidationFailed(
                f"The {adapter_type} adapter needs a base_url before it can be enabled.",
                errors={"base_url": ["Required while the adapter is enabled."]},
            )
        if connection_changed:
            config.circuit_state = CircuitState.CLOSED
            config.consecutive_failures = 0
            config.circuit_opened_at = None
        config.save()
    logger.info(
        "Adapter config %s of %s updated (credentials %s)",
        adapter_type,
        operator.pk,
        "changed" if credentials is not UNSET else "unchanged",
    )
    return config


# --- connector statuses --------------------------------------------------------------------------------


def connector_statuses_apply(*, operator_id: str, adapter_type: str, reports: list[ConnectorStatusReport]) -> int:
    """Record reported statuses; each real change updates the connector and emits
    `infrastructure.connector_status_changed` (with `previous_status`). Returns the number of changes."""
    # OCPI ids are case-insensitive (a CPO may lower-case them): stations and connectors match without case.
    reported = {(r.cpms_station_id.casefold(), r.connector_id.casefold()): r.status for r in reports}
    stations = {r.cpms_station_id for r in reports}
    candidates = (
        live_connectors()
        .filter(operator_id=operator_id, mapping__adapter_type=adapter_type)
        .filter(_station_in(stations))
        .values_list("pk", "mapping__cpms_station_id", "connector_id", "status")
    )
    changed = [
        pk
        for pk, station, connector_id, status in candidates
        if reported.get((station.casefold(), connector_id.casefold()), status) != status
    ]
    if not changed:
        return 0
    count = 0
    now = timezone.now()
    with transaction.atomic():
        # Lock the connectors only (`of=self`): locking their mappings too, after the connectors, would be the
        # reverse of the order a session start and a mapping change take (mapping, then connector): deadlock.
        locked = list(
            Connector.objects.select_for_update(of=("self",))
            .filter(pk__in=changed)
            .select_related("mapping")
            .order_by("pk")
        )
        sessions = active_sessions_by_connector(mapping_ids=[c.mapping_id for c in locked])
        for connector in locked:
            new_status = reported[(connector.mapping.cpms_station_id.casefold(), connector.connector_id.casefold())]
            if new_status == connector.status:  # changed by a parallel poll meanwhile
                continue
            _connector_status_change(connector, new_status, now=now, sessions=sessions)
            count += 1
    return count


def _station_in(stations: set[str]) -> Q:
    query = Q(pk__in=[])
    for station in stations:
        query |= Q(mapping__cpms_station_id__iexact=station)
    return query


def _connector_status_change(
    connector: Connector, new_status: str, *, now: datetime, sessions: dict[tuple[str, str], str]
) -> None:
    """Write a connector's new status and its `infrastructure.connector_status_changed` event (locked row)."""
    previous = connector.status
    connector.status, connector.status_updated_at = new_status, now
    connector.save(update_fields=["status", "status_updated_at", "updated_at"])
    connector_status_changed_emit(connector=connector, previous_status=previous, active_sessions=sessions)


def connector_status_follow_session(
    *, mapping_id: str, connector_id: str, charging: bool, session_id: str | None = None
) -> bool:
    """One of our sessions began (the connector shows CHARGING) or ended (a connector showing CHARGING shows
    AVAILABLE), until the CPMS reports otherwise. Runs inside the session's transaction (its event with it).
    `session_id`: the session that began, which is then the connector's running one (the event shows it without
    looking up the running sessions of the whole station)."""
    # No savepoint: nothing here refuses anything, and an error fails the session's whole transaction.
    with transaction.atomic(savepoint=False):
        connector = (
            Connector.objects.select_for_update(of=("self",))
            .select_related("mapping")
            .filter(mapping_id=mapping_id, connector_id=connector_id)
            .first()
        )
        if connector is None:
            return False
        if charging:
            new_status = OcpiStatus.CHARGING
        elif connector.status == OcpiStatus.CHARGING:
            new_status = OcpiStatus.AVAILABLE
        else:  # the CPMS said something else meanwhile (out of order...): that stays
            return False
        if connector.status == new_status:
            return False
        if charging and session_id is not None:
            sessions = {(mapping_id, connector_id): session_id}
        else:
            sessions = active_sessions_by_connector(mapping_ids=[mapping_id])
        _connector_status_change(connector, new_status, now=timezone.now(), sessions=sessions)
    return True


def mapping_statuses_fetch(*, mapping: StationMapping) -> int:
    """Ask the mapping's CPMS for its connectors' statuses now (a new or changed mapping); record changes."""
    if not mapping.is_active or adapter_refusal(operator_id=mapping.operator_id, adapter_type=mapping.adapter_type):
        return 0
    try:
        reports = adapter_for_mapping(mapping).fetch_connector_statuses()
    except AdapterUnavailable as exc:
        logger.warning("Fetching the statuses of %s failed: %s", mapping.pk, exc)
        return 0
    return connector_statuses_apply(operator_id=mapping.operator_id, adapter_type=mapping.adapter_type, reports=reports)


def adapter_poll_claim(*, config: AdapterConfig) -> bool:
    """Take this config's next poll (one winner across beat ticks and processes)."""
    return (
        AdapterConfig.objects.filter(pk=config.pk, last_polled_at=config.last_polled_at).update(
            last_polled_at=timezone.now()
        )
        == 1
    )


def adapter_poll(*, config: AdapterConfig) -> int:
    """Ask the adapter for the statuses of every active station it runs for the operator; record changes."""
    stations = list(
        StationMapping.objects.live()
        .filter(
            operator_id=config.operator_id,
            adapter_type=config.adapter_type,
            is_active=True,
        )
        .values_list("cpms_station_id", flat=True)
        .distinct()
    )
    if not stations:
        return 0
    try:
        reports = GuardedAdapter(config).fetch_connector_statuses(cpms_station_ids=stations)
    except AdapterUnavailable as exc:
        logger.warning("Polling %s for %s failed: %s", config.adapter_type, config.operator_id, exc)
        return 0
    return connector_statuses_apply(operator_id=config.operator_id, adapter_type=config.adapter_type, reports=reports)


# --- adapter health ------------------------------------------------------------------------------------


def adapter_health_probe(*, config: AdapterConfig) -> str:
    """Ping the adapter (when enabled; through the circuit, so an open circuit gets its half-open trial
    here), then record its health status; a change emits `infrastructure.adapter_status_changed`."""
    if config.enabled:
        GuardedAdapter(config).ping()
    entry = adapter_health(operator_id=config.operator_id, adapter_type=config.adapter_type)[0]
    with transaction.atomic():
        config = AdapterConfig.objects.select_for_update().get(pk=config.pk)
        previous = config.health_status
        if previous == entry["status"]:
            return previous
        config.health_status = entry["status"]
        config.save(update_fields=["health_status"])  # not a config change: updated_at stays
        if previous:  # the first probe only records the starting point
            adapter_status_changed_emit(operator_id=config.operator_id, health=entry, previous_status=previous)
    return entry["status"]


def adapter_calls_prune(*, before: datetime | None = None) -> int:
    before = before or timezone.now() - timedelta(seconds=settings.CPMS_CALL_RETENTION)
    return prune_in_batches(AdapterCall.objects.filter(created_at__lt=before))
