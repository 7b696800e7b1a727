"""Serializer fields shared by every app: money, currency, metadata, references to operator-owned objects."""

from datetime import UTC

from rest_framework import serializers

from evpay.core import money
from evpay.core.clock import request_time_problem

METADATA_MAX_KEYS = 20
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


class AmountField(serializers.IntegerField):
    """An amount in the currency's minor unit."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", money.MIN_AMOUNT)
        kwargs.setdefault("max_value", money.MAX_AMOUNT)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        # Amounts are JSON integers: 10.5 is a major-unit mistake, not something to round silently, and a
        # string ("5000") or a boolean is a client bug to surface, not to coerce.
        if isinstance(data, (bool, str)) or isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)


class CurrencyField(serializers.CharField):
    default_error_messages = {"unknown": "Unknown ISO 4217 currency code {value!r}; use an upper-case code like EUR."}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not money.is_known_currency(value):
            self.fail("unknown", value=value)
        return value


class MetadataField(serializers.JSONField):
    """Free-form string key/value pairs: at most 20 keys, keys <= 40 chars, values <= 500 chars."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be an object of string keys and values.")
        if len(data) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys.")
        for key, value in data.items():
            if len(key) > METADATA_MAX_KEY_LENGTH:
                raise serializers.ValidationError(f"Key {key[:50]!r} is longer than {METADATA_MAX_KEY_LENGTH}.")
            if isinstance(value, (dict, list)):
                raise serializers.ValidationError(f"Value of {key!r} must be a string, number or boolean.")
            if value is not None and len(str(value)) > METADATA_MAX_VALUE_LENGTH:
                raise serializers.ValidationError(f"Value of {key!r} is longer than {METADATA_MAX_VALUE_LENGTH}.")
        return data


class OperatorObjectField(serializers.CharField):
    """An id (`trm_…`) of an object of the caller's operator, resolved to the instance.
    An unknown id and another operator's id fail alike."""

    default_error_messages = {"does_not_exist": "No {model} {value!r}."}

    def __init__(self, *, queryset, **kwargs):
        self.queryset = queryset
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        operator = self.context["request"].user.operator
        instance = self.queryset.filter(operator=operator, pk=value).first()
        if instance is None:
            self.fail("does_not_exist", model=self.queryset.model._meta.verbose_name, value=value)
        return instance

    def to_representation(self, value):
        return getattr(value, "pk", value)


class RequestTimeField(serializers.DateTimeField):
    """A time sent by a client (RFC 3339), in UTC, within the bounds of `evpay.core.times`. Every time field of
    a request body uses it."""

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value) > 64:
            self.fail("invalid", format="RFC 3339")
        parsed = super().to_internal_value(value)
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:  # an offset that leaves years 1-9999
            self.fail("invalid", format="RFC 3339")
        problem = request_time_problem(parsed)
        if problem:
            raise serializers.ValidationError(problem, code="out_of_range")
        return parsed
