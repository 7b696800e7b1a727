import django_filters

from evpay.api.filters import BaseFilterSet

from .models import PaymentIntent, PaymentIntentStatus


class PaymentIntentFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentIntentStatus.choices)
    terminal_id = django_filters.CharFilter(field_name="terminal_id")
    currency = django_filters.CharFilter()

    class Meta:
        model = PaymentIntent
        fields = ["status", "terminal_id", "currency"]
