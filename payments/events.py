"""The payloads of payments' events. An event's `data.object` is the resource exactly as the API shows it
(contract), so the payload is the API representation; this module is the one place that builds it, so that no
service needs a serializer."""

from typing import Any

from webhooks.services import event_emit

from .models import PaymentIntent, Refund
from .serializers import PaymentIntentSerializer, RefundSerializer


def payment_intent_payload(intent: PaymentIntent, *, new: bool = False) -> dict[str, Any]:
    # A new intent pays for no charge session yet: no need to ask the charging app.
    return dict(PaymentIntentSerializer(intent, context={"intent_uses": {}} if new else {}).data)


def payment_intent_event_emit(*, intent: PaymentIntent, type: str) -> None:
    """`payment_intent.created`, `.authorized`, `.authorization_failed`, `.captured`, `.voided`, `.expired`,
    `.refunded`."""
    payload = payment_intent_payload(intent, new=type == "payment_intent.created")
    event_emit(operator=intent.operator_id, type=type, data_object=payload)


def refund_event_emit(*, refund: Refund, type: str) -> None:
    """`refund.created`, `refund.succeeded`, `refund.failed`."""
    event_emit(operator=refund.operator_id, type=type, data_object=dict(RefundSerializer(refund).data))
