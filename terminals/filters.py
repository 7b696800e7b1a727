import django_filters

from evpay.api.filters import BaseFilterSet, IsoDateTimeFilter

from .models import Terminal, TerminalStatus


class TerminalFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(choices=TerminalStatus.choices)
    vendor = django_filters.CharFilter()
    model = django_filters.CharFilter()
    station_id = django_filters.CharFilter()
    q = django_filters.CharFilter(
        field_name="serial_number", lookup_expr="icontains", help_text="Serial number contains (case-insensitive)."
    )
    last_seen_before = IsoDateTimeFilter(
        field_name="last_seen_at",
        lookup_expr="lt",
        help_text="Last seen before this time; terminals never seen are not included.",
    )

    class Meta:
        model = Terminal
        fields = ["status", "vendor", "model", "station_id"]
