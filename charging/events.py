"""The payloads of charging's events. An event's `data.object` is the resource exactly as the API shows it
(contract), so the payload is the API representation; this module is the one place that builds it, so that no
service needs a serializer."""

from typing import Any

from webhooks.services import event_emit

from . import metrics
from .models import ChargeSession
from .serializers import ChargeSessionSerializer


def charge_session_payload(session: ChargeSession) -> dict[str, Any]:
    return dict(ChargeSessionSerializer(session).data)


def charge_session_event_emit(*, session: ChargeSession, type: str) -> None:
    """`charge.started`, `charge.cost_cap_reached`, `charge.completed`, `charge.failed`."""
    event_emit(operator=session.operator_id, type=type, data_object=charge_session_payload(session))
    metrics.session_event_recorded(event=type, stop_reason=session.stop_reason)
