import django_filters

from evpay.api.filters import BaseFilterSet

from .models import PaymentIntent, PaymentIntentStatus, Refund, RefundStatus


class PaymentIntentFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentIntentStatus.choices)
    terminal_id = django_filters.CharFilter(field_name="terminal_id")
    currency = django_filters.CharFilter()

    class Meta:
        model = PaymentIntent
        fields = ["status", "terminal_id", "currency"]


class RefundFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=RefundStatus.choices)
    payment_intent_id = django_filters.CharFilter(field_name="payment_intent_id")

    class Meta:
        model = Refund
        fields = ["status", "payment_intent_id"]
