import django_filters


class BaseFilterSet(django_filters.FilterSet):
    """Every list filters by creation time the same way."""

    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
