import django_filters

from evpay.api.filters import BaseFilterSet

from .models import ChargeSession, ChargeSessionStatus


class ChargeSessionFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=ChargeSessionStatus.choices)
    terminal_id = django_filters.CharFilter(field_name="terminal_id")
    station_id = django_filters.CharFilter()
    payment_intent_id = django_filters.CharFilter(field_name="payment_intent_id")

    class Meta:
        model = ChargeSession
        fields = ["status", "terminal_id", "station_id", "payment_intent_id"]
