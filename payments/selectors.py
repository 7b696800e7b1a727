from django.utils import timezone

from .models import PaymentIntent, PaymentIntentStatus


def payment_intents_due_for_expiry(*, limit: int = 500) -> list[PaymentIntent]:
    return list(
        PaymentIntent.objects.filter(status=PaymentIntentStatus.AUTHORIZED, capture_before__lte=timezone.now())
        .order_by("capture_before")[:limit]
    )
