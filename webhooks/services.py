import logging

from django.db import connection

from evpay.core.models import Operator

from .models import Event

logger = logging.getLogger(__name__)


def event_emit(*, operator: Operator | str, type: str, data_object: dict, extra_data: dict | None = None) -> Event:
    """Write the event of a state change. Must run inside the transaction that makes the change,
    so that the change and its event commit or roll back together. `extra_data` goes next to `object` in
    `data` (e.g. `previous_status`)."""
    if not connection.in_atomic_block:
        raise RuntimeError(f"event_emit({type}) outside a transaction: the event could outlive or miss its change.")
    operator_id = operator if isinstance(operator, str) else operator.pk
    event = Event.objects.create(operator_id=operator_id, type=type, data={"object": data_object, **(extra_data or {})})
    # Every state change passes here: one log line each, with the ids needed to follow an object.
    logger.info("%s %s", type, data_object.get("id"),
                extra={"event_id": event.id, "event_type": type, "object_id": data_object.get("id"),
                       "operator_id": operator_id})
    return event
