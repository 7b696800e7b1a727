"""The payloads of infrastructure's events. An event's `data.object` is the resource exactly as the API shows
it (contract), so the payload is the API representation; this module is the one place that builds it, so that
no service needs a serializer."""

from typing import Any

from webhooks.services import event_emit

from .models import Connector, StationMapping
from .serializers import AdapterHealthSerializer, ConnectorStatusChangedSerializer, StationMappingSerializer


def connectivity_tested_emit(*, mapping: StationMapping) -> None:
    event_emit(
        operator=mapping.operator_id,
        type="infrastructure.connectivity_tested",
        data_object=dict(StationMappingSerializer(mapping).data),
    )


def connector_status_changed_emit(
    *, connector: Connector, previous_status: str, active_sessions: dict[tuple[str, str], str]
) -> None:
    connector.previous_status = previous_status  # type: ignore[attr-defined]  # read by the serializer
    payload = ConnectorStatusChangedSerializer(connector, context={"active_sessions": active_sessions}).data
    event_emit(
        operator=connector.operator_id, type="infrastructure.connector_status_changed", data_object=dict(payload)
    )


def adapter_status_changed_emit(*, operator_id: str, health: dict[str, Any], previous_status: str) -> None:
    event_emit(
        operator=operator_id,
        type="infrastructure.adapter_status_changed",
        data_object={**AdapterHealthSerializer(health).data, "previous_status": previous_status},
    )
