import django_filters


class BaseFilterSet(django_filters.FilterSet):
    """Every list filters by creation time the same way."""

    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")


class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true`/`false` (or `1`/`0`); anything else is a 400, not silently ignored as BooleanFilter does."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")])
        kwargs.setdefault("coerce", lambda value: value in ("true", "1"))
        super().__init__(*args, **kwargs)
