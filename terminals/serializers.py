from rest_framework import serializers

from evpay.api.fields import MetadataField, RequestTimeField
from evpay.api.representation import choice, choices_of, datetime_text, text
from evpay.api.serializers import Serializer

from .countries import ISO_3166_ALPHA2
from .models import (
    OPERATOR_SETTABLE_STATUSES,
    Capability,
    HealthEventType,
    Terminal,
    TerminalHealthEvent,
    TerminalStatus,
)


class CountryField(serializers.CharField):
    default_error_messages = {
        "unknown": "Unknown ISO 3166-1 alpha-2 country code {value!r}; use an upper-case code like DE.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 2)
        kwargs.setdefault("max_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in ISO_3166_ALPHA2:
            self.fail("unknown", value=value)
        return value


class LocationSerializer(Serializer):
    address = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True, default=None)
    city = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True, default=None)
    postal_code = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True, default=None)
    country = CountryField(required=False, allow_null=True, default=None)
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True, default=None)
    longitude = serializers.FloatField(min_value=-180, max_value=180, required=False, allow_null=True, default=None)


class HealthSummarySerializer(Serializer):
    last_event_type = serializers.ChoiceField(
        choices=HealthEventType.choices, allow_null=True, source="health_last_event_type"
    )
    last_error_code = serializers.CharField(allow_null=True, source="health_last_error_code")
    signal_strength_dbm = serializers.IntegerField(allow_null=True, source="health_signal_strength_dbm")
    temperature_c = serializers.FloatField(allow_null=True, source="health_temperature_c")
    errors_24h = serializers.IntegerField(
        source="health_errors_24h", help_text="Error events that occurred in the last 24 hours."
    )


class TerminalSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    location = LocationSerializer(allow_null=True)
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=Capability.choices))
    health = HealthSummarySerializer(source="*")
    metadata = serializers.DictField()

    class Meta:
        model = Terminal
        fields = [
            "id",
            "object",
            "serial_number",
            "vendor",
            "model",
            "firmware_version",
            "station_id",
            "location",
            "capabilities",
            "status",
            "status_reason",
            "last_seen_at",
            "health",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        # Lists, status changes and their events: the output of the declared fields without building them per
        # instance (the schema is still built from them; tests/test_terminals.py compares both).
        return terminal_data(instance)

    def get_object(self, obj) -> str:
        return "terminal"


class TerminalCreateSerializer(Serializer):
    serial_number = serializers.CharField(max_length=100)
    vendor = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    firmware_version = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    station_id = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)
    location = LocationSerializer(required=False, allow_null=True, default=None)
    capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Capability.choices),
        required=False,
        default=list,
        max_length=len(Capability.choices),
    )
    metadata = MetadataField()

    def validate_capabilities(self, value):
        return list(dict.fromkeys(value))  # a repeated capability is the same capability


class HealthMetricsSerializer(Serializer):
    signal_strength_dbm = serializers.IntegerField(min_value=-200, max_value=0, required=False, allow_null=True)
    temperature_c = serializers.FloatField(min_value=-100, max_value=200, required=False, allow_null=True)
    uptime_s = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class TerminalHealthEventSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    terminal_id = serializers.CharField(read_only=True)
    metrics = HealthMetricsSerializer(allow_null=True)

    class Meta:
        model = TerminalHealthEvent
        fields = ["id", "object", "terminal_id", "type", "occurred_at", "code", "message", "metrics", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance):
        # The hot path of every health event (see TerminalSerializer.to_representation).
        return terminal_health_event_data(instance)

    def get_object(self, obj) -> str:
        return "terminal_health_event"


class TerminalHealthEventCreateSerializer(Serializer):
    type = serializers.ChoiceField(choices=HealthEventType.choices)
    occurred_at = RequestTimeField(
        help_text="When the terminal observed it (RFC 3339). At most 5 minutes ahead of the server's clock."
    )
    code = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True, default=None)
    message = serializers.CharField(max_length=1000, required=False, allow_null=True, allow_blank=True, default=None)
    metrics = HealthMetricsSerializer(required=False, allow_null=True, default=None)


class TerminalStatusSetSerializer(Serializer):
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in OPERATOR_SETTABLE_STATUSES],
        help_text="`faulted` is set by error/tamper health events only. `decommissioned` is final.",
    )
    reason = serializers.CharField(max_length=500, required=False, allow_null=True, allow_blank=True, default="")


class TerminalStatsSerializer(Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text=f"Every status: {', '.join(TerminalStatus.values)}."
    )
    by_vendor = serializers.DictField(
        child=serializers.IntegerField(), help_text="Terminals without a vendor count under `unknown`."
    )
    by_model = serializers.DictField(
        child=serializers.IntegerField(), help_text="Terminals without a model count under `unknown`."
    )
    online_ratio = serializers.FloatField(help_text="online / total (0 for an empty fleet).")
    stale = serializers.IntegerField(
        help_text="Online terminals not seen for TERMINAL_OFFLINE_AFTER seconds "
        "(the offline sweep will turn them offline)."
    )
    health_events_24h = serializers.DictField(
        child=serializers.IntegerField(), help_text="Health events that occurred in the last 24 hours, by type."
    )


# --- representations without serializer fields (hot paths; each equals its serializer's declared fields) --------

_CAPABILITIES = choices_of(Capability)
_STATUSES = choices_of(TerminalStatus)
_EVENT_TYPES = choices_of(HealthEventType)
_LOCATION_TEXT = ("address", "city", "postal_code", "country")
_LOCATION_NUMBERS = ("latitude", "longitude")


def _location(location: dict) -> dict:
    # A missing key is null, as LocationSerializer's defaults make it.
    data: dict[str, str | float | None] = {name: text(location.get(name)) for name in _LOCATION_TEXT}
    for name in _LOCATION_NUMBERS:
        value = location.get(name)
        data[name] = None if value is None else float(value)
    return data


def terminal_data(terminal: Terminal) -> dict:
    """A terminal as the API shows it (TerminalSerializer's fields)."""
    t = terminal
    location, capabilities, metadata = t.location, t.capabilities, t.metadata
    return {
        "id": t.id,
        "object": "terminal",
        "serial_number": text(t.serial_number),
        "vendor": text(t.vendor),
        "model": text(t.model),
        "firmware_version": text(t.firmware_version),
        "station_id": text(t.station_id),
        "location": None if location is None else _location(location),
        "capabilities": None
        if capabilities is None
        else [None if c is None else choice(c, _CAPABILITIES) for c in capabilities],
        "status": choice(t.status, _STATUSES),
        "status_reason": text(t.status_reason),
        "last_seen_at": datetime_text(t.last_seen_at),
        "health": {
            "last_event_type": choice(t.health_last_event_type, _EVENT_TYPES),
            "last_error_code": text(t.health_last_error_code),
            "signal_strength_dbm": None if t.health_signal_strength_dbm is None else int(t.health_signal_strength_dbm),
            "temperature_c": None if t.health_temperature_c is None else float(t.health_temperature_c),
            "errors_24h": None if t.health_errors_24h is None else int(t.health_errors_24h),
        },
        "metadata": None if metadata is None else {str(k): v for k, v in metadata.items()},
        "created_at": datetime_text(t.created_at),
        "updated_at": datetime_text(t.updated_at),
    }


def _metrics(metrics: dict) -> dict:
    signal, temperature, uptime = (metrics.get(k) for k in ("signal_strength_dbm", "temperature_c", "uptime_s"))
    return {
        "signal_strength_dbm": None if signal is None else int(signal),
        "temperature_c": None if temperature is None else float(temperature),
        "uptime_s": None if uptime is None else int(uptime),
    }


def terminal_health_event_data(event: TerminalHealthEvent) -> dict:
    """A health event as the API shows it (TerminalHealthEventSerializer's fields)."""
    return {
        "id": event.id,
        "object": "terminal_health_event",
        "terminal_id": text(event.terminal_id),
        "type": choice(event.type, _EVENT_TYPES),
        "occurred_at": datetime_text(event.occurred_at),
        "code": text(event.code),
        "message": text(event.message),
        "metrics": None if event.metrics is None else _metrics(event.metrics),
        "created_at": datetime_text(event.created_at),
    }
