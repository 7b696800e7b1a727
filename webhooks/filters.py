import django_filters

from evpay.api.filters import BaseFilterSet, StrictBooleanFilter

from .models import ALL_EVENT_TYPES, EVENT_TYPES, DeliveryStatus, WebhookDelivery, WebhookSubscription
from .selectors import subscriptions_for_event_type

_EVENT_TYPE_CHOICES = [(t, t) for t in EVENT_TYPES]


class WebhookSubscriptionFilterSet(BaseFilterSet):
    is_active = StrictBooleanFilter()
    event_type = django_filters.ChoiceFilter(
        choices=[*_EVENT_TYPE_CHOICES, (ALL_EVENT_TYPES, ALL_EVENT_TYPES)],
        method="filter_event_type",
        help_text='Subscriptions that receive this type (directly or by "*").',
    )

    class Meta:
        model = WebhookSubscription
        fields = ["is_active", "event_type"]

    def filter_event_type(self, queryset, name, value):
        return queryset.filter(subscriptions_for_event_type(value))


class WebhookDeliveryFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.ChoiceFilter(choices=_EVENT_TYPE_CHOICES)

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event_type"]
