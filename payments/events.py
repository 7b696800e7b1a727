"""The payloads of payments' events. An event's `data.object` is the resource exactly as the API shows it
(contract), so the payload is the API representation; this module is the one place that builds it, so that no
service needs a serializer."""

from typing import Any

from webhooks.services import event_emit

from .models import PaymentIntent, Refund
from .serializers import PaymentIntentSerializer, RefundSerializer


def payment_intent_payload(intent: PaymentIntent) -> dict[str, Any]:
    return dict(PaymentIntentSerializer(intent).data)


def payment_intent_event_emit(*, intent: PaymentIntent, type: str) -> None:
    """`payment_intent.created`, `.authorized`, `.authorization_failed`, `.captured`, `.voided`, `.expired`,
    `.refunded`."""
    event_emit(operator=intent.operator_id, type=type, data_object=payment_intent_payload(intent))


def refund_event_emit(*, refund: Refund, type: str) -> None:
    """`refund.created`, `refund.succeeded`, `refund.failed`."""
    event_emit(operator=refund.operator_id, type=type, data_object=dict(RefundSerializer(refund).data))
