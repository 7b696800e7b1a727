"""Infrastructure writes: mappings and their connectors, adapter configuration, connector statuses,
connectivity tests. Adapter calls happen outside any transaction; their results are recorded after."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from charging.models import Tariff
from evpay.api.errors import DomainError, NotFound, ValidationFailed
from evpay.core.models import Operator
from webhooks.services import event_emit

from .adapters.registry import adapter_for_mapping, adapter_types, is_adapter_type
from .models import AdapterConfig, ConnectivityTestStatus, Connector, SimulatedConnectorState, StationMapping
from .selectors import active_sessions_by_connector
from .statuses import PROTOCOLS

# Defaults of a fresh AdapterConfig, per adapter type (the rest are the model defaults).
ADAPTER_DEFAULTS = {
    "simulator": {"poll_interval_s": 60},
    "ocpi": {"poll_interval_s": 300, "timeout_ms": 10000},
}


def adapter_config_ensure(*, operator_id: str, adapter_type: str) -> AdapterConfig:
    """The operator's config of this adapter type, created with defaults on first use (enabled when it is
    CPMS_DEFAULT_ADAPTER)."""
    config = AdapterConfig.objects.filter(operator_id=operator_id, adapter_type=adapter_type).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            return AdapterConfig.objects.create(
                operator_id=operator_id, adapter_type=adapter_type,
                enabled=adapter_type == settings.CPMS_DEFAULT_ADAPTER, **ADAPTER_DEFAULTS.get(adapter_type, {}),
            )
    except IntegrityError:  # created meanwhile by another request
        return AdapterConfig.objects.get(operator_id=operator_id, adapter_type=adapter_type)


def simulator_connector_status_set(*, cpms_station_id: str, connector_id: str, raw_status: str,
                                   protocol: str = "ocpp1.6") -> None:
    """Tell the simulator CPMS what to report for a connector from now on (tests, demo)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}")
    SimulatedConnectorState.objects.update_or_create(
        cpms_station_id=cpms_station_id, connector_id=connector_id,
        defaults={"protocol": protocol, "raw_status": raw_status},
    )


# --- mappings ------------------------------------------------------------------------------------------

class MappingExists(DomainError):
    status_code, code, title = 409, "mapping_exists", "Mapping exists"


class MappingInUse(DomainError):
    status_code, code, title = 409, "mapping_in_use", "Mapping in use"


def _check_adapter_type(adapter_type: str) -> None:
    if not is_adapter_type(adapter_type):
        raise ValidationFailed(f"Unknown adapter_type {adapter_type!r}; one of: {', '.join(adapter_types())}.",
                               errors={"adapter_type": [f"Unknown adapter type {adapter_type!r}."]})


def _check_tariff(operator_id: str, tariff: Tariff | None) -> None:
    if tariff is not None and tariff.operator_id != operator_id:
        raise ValidationFailed(f"No tariff {tariff.pk!r}.", errors={"tariff_id": ["Unknown tariff."]})


def _station_taken(operator_id: str, station_id: str, exclude_pk: str | None = None) -> bool:
    return StationMapping.objects.live().filter(operator_id=operator_id, station_id=station_id) \
        .exclude(pk=exclude_pk).exists()


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
            raise MappingInUse(f"A charge session runs on connector {', '.join(busy)} of {mapping.station_id}; "
                               "it cannot be removed until the session ends.")
        Connector.objects.filter(mapping=mapping, connector_id__in=removed).delete()
    for connector_id, spec in wanted.items():
        fields = {k: spec[k] for k in ("evse_uid", "standard", "power_type", "max_power_kw") if k in spec}
        if connector_id in existing:
            connector = existing[connector_id]
            changed = [k for k, v in fields.items() if getattr(connector, k) != v]
            for k in changed:
                setattr(connector, k, fields[k])
            if changed:
                connector.save(update_fields=[*changed, "updated_at"])
        else:
            Connector.objects.create(mapping=mapping, operator_id=mapping.operator_id, connector_id=connector_id,
                                     **fields)


def mapping_create(*, operator: Operator, station_id: str, adapter_type: str, cpms_station_id: str,
                   tariff: Tariff | None = None, is_active: bool = True, connectors: list[dict] | None = None,
                   metadata: dict | None = None) -> StationMapping:
    _check_adapter_type(adapter_type)
    _check_tariff(operator.pk, tariff)
    if _station_taken(operator.pk, station_id):
        raise MappingExists(f"Station {station_id!r} is mapped already.")
    try:
        with transaction.atomic():
            mapping = StationMapping.objects.create(
                operator=operator, station_id=station_id, adapter_type=adapter_type,
                cpms_station_id=cpms_station_id, tariff=tariff, is_active=is_active, metadata=metadata or {},
            )
            _connectors_replace(mapping, connectors or [])
    except IntegrityError:  # a parallel create of the same station won
        raise MappingExists(f"Station {station_id!r} is mapped already.") from None
    adapter_config_ensure(operator_id=operator.pk, adapter_type=adapter_type)
    return mapping


_UNSET = object()


def mapping_update(*, mapping: StationMapping, station_id: str | None = None, adapter_type: str | None = None,
                   cpms_station_id: str | None = None, tariff: Tariff | None | object = _UNSET,
                   is_active: bool | None = None, connectors: list[dict] | None = None,
                   metadata: dict | None = None) -> StationMapping:
    """Change the given fields only (PATCH). `tariff=None` clears the tariff."""
    if adapter_type is not None:
        _check_adapter_type(adapter_type)
    if tariff is not _UNSET:
        _check_tariff(mapping.operator_id, tariff)
    try:
        with transaction.atomic():
            mapping = _lock_mapping(mapping)
            if station_id is not None and station_id != mapping.station_id:
                if _station_taken(mapping.operator_id, station_id, exclude_pk=mapping.pk):
                    raise MappingExists(f"Station {station_id!r} is mapped already.")
                mapping.station_id = station_id
            for name, value in (("adapter_type", adapter_type), ("cpms_station_id", cpms_station_id),
                                ("is_active", is_active), ("metadata", metadata)):
                if value is not None:
                    setattr(mapping, name, value)
            if tariff is not _UNSET:
                mapping.tariff = tariff
            mapping.save()
            if connectors is not None:
                _connectors_replace(mapping, connectors)
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
            raise MappingInUse(f"Station {mapping.station_id} has a charge session running ({sessions}); "
                               "delete the mapping after it ends.")
        mapping.deleted_at = timezone.now()
        mapping.is_active = False
        mapping.save(update_fields=["deleted_at", "is_active", "updated_at"])


def _lock_mapping(mapping: StationMapping) -> StationMapping:
    locked = StationMapping.objects.live().select_for_update().filter(pk=mapping.pk).first()
    if locked is None:
        raise NotFound(f"No station mapping {mapping.pk!r}.")
    return locked


# --- connectivity tests --------------------------------------------------------------------------------

def _emit_mapping(mapping: StationMapping, event_type: str) -> None:
    from .serializers import StationMappingSerializer

    event_emit(operator=mapping.operator_id, type=event_type, data_object=StationMappingSerializer(mapping).data)


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
        mapping.connectivity_test_status = (ConnectivityTestStatus.SUCCEEDED if result.ok
                                            else ConnectivityTestStatus.FAILED)
        mapping.connectivity_test_latency_ms = result.latency_ms
        mapping.connectivity_test_error = (result.error or "")[:500]
        mapping.connectivity_tested_at = timezone.now()
        mapping.save()
        _emit_mapping(mapping, "infrastructure.connectivity_tested")
    return mapping
