from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from evpay.core.clock import request_time_problem


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, handed to the database in UTC. Python accepts offsets up to ±23:59 and PostgreSQL only
    up to ±15:59, and a time near year 1 or 9999 may have no UTC equivalent: either would fail in the query."""

    default_error_messages = {"out_of_range": "Enter a date/time that exists in UTC (years 1 to 9999)."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None
        problem = request_time_problem(value)  # the one rule for times in requests, query parameters included
        if problem:
            raise forms.ValidationError(problem, code="out_of_range")
        return value


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Use this for every date/time filter (see `UtcIsoDateTimeField`)."""

    field_class = UtcIsoDateTimeField


class BaseFilterSet(django_filters.FilterSet):
    """Every list filters by creation time the same way. A filter given with no value (`?created_after=`) is a
    400, not silently ignored."""

    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    def is_valid(self):
        valid = super().is_valid()
        for name in self.filters:
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data.get(name)]
            if name in self.data and all(value == "" for value in values):
                self.form.add_error(name, forms.ValidationError("Give a value, or leave the filter out.", "empty"))
                valid = False
        return valid


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true`/`false` (or `1`/`0`); anything else is a 400, not silently ignored as BooleanFilter does."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")])
        kwargs.setdefault("coerce", lambda value: value in ("true", "1"))
        super().__init__(*args, **kwargs)
