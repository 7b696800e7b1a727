import django_filters
from django.core.validators import RegexValidator

from evpay.api.filters import BaseFilterSet, StrictBooleanFilter

from .models import ALL_EVENT_TYPES, EVENT_TYPES, DeliveryStatus, Event, WebhookDelivery, WebhookSubscription
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


_event_type_pattern = RegexValidator(
    r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)\Z",
    "An event type such as charge.completed, or a prefix ending in * such as charge.*.",
)


class EventFilterSet(BaseFilterSet):
    type = django_filters.CharFilter(
        method="filter_type",
        max_length=64,
        validators=[_event_type_pattern],
        help_text="An event type (`charge.completed`), or a prefix ending in `*` (`charge.*`; `*` is every type).",
    )
    object_id = django_filters.CharFilter(
        max_length=64, help_text="Events about this resource: the `id` of `data.object` (`pi_...`, `chs_...`)."
    )

    class Meta:
        model = Event
        fields = ["type", "object_id"]

    def filter_type(self, queryset, name, value):
        if value.endswith("*"):
            prefix = value[:-1]
            return queryset.filter(type__startswith=prefix) if prefix else queryset
        return queryset.filter(type=value)
