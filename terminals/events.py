"""The payloads of terminals' events. An event's `data.object` is the resource exactly as the API shows it
(contract), so the payload is the API representation; this module is the one place that builds it, so that no
service needs a serializer."""

from typing import Any

from webhooks.services import event_emit

from .models import Terminal
from .serializers import TerminalSerializer


def terminal_payload(terminal: Terminal) -> dict[str, Any]:
    return dict(TerminalSerializer(terminal).data)


def terminal_registered_emit(*, terminal: Terminal) -> None:
    event_emit(operator=terminal.operator_id, type="terminal.registered", data_object=terminal_payload(terminal))


def terminal_status_changed_emit(*, terminal: Terminal, previous_status: str) -> None:
    event_emit(
        operator=terminal.operator_id,
        type="terminal.status_changed",
        data_object=terminal_payload(terminal),
        extra_data={"previous_status": previous_status},
    )
