from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evpay.api.fields import AmountField, CurrencyField, MetadataField, RequestTimeField
from evpay.api.representation import choice, choices_of, datetime_text, text
from evpay.api.serializers import Serializer
from evpay.core import money

from .costs import price_incl_vat
from .models import ChargeSession, ChargeSessionStatus, StopReason, Tariff


def decimal_string(value: Decimal | None) -> str | None:
    """ "0.59" for 0.5900, "0.1234" kept, "1.00" for 1: at least two decimals, no padding beyond them."""
    if value is None:
        return None
    value = Decimal(value)
    normalized = value.normalize()
    if -int(normalized.as_tuple().exponent) < 2:
        normalized = value.quantize(Decimal("0.01"))
    return f"{normalized:f}"


class DecimalStringField(serializers.DecimalField):
    """A non-negative decimal sent and returned as a string ("0.59"); at most `decimal_places` decimals.
    JSON floats are refused: their binary value is not the price the client means."""

    default_error_messages = {"not_a_string": 'Send a decimal string such as "0.59".'}

    def __init__(self, *, max_digits: int = 12, decimal_places: int = 4, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, (float, bool)):
            self.fail("not_a_string")
        return super().to_internal_value(data)

    def to_representation(self, value):
        return decimal_string(value)


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "example": "19.00",
        "description": "Percent, 0-100, at most 2 decimals; a number is accepted too.",
    }
)
class VatRateField(serializers.DecimalField):
    def __init__(self, **kwargs):
        super().__init__(max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), **kwargs)

    def to_representation(self, value):
        return decimal_string(value)


class TariffSerializer(serializers.ModelSerializer):
    """Prices: decimal strings in major units excluding VAT (>= 0, at most 4 decimals); `preauthorize_amount`
    in minor units. `is_default: true` takes the default from the operator's previous default tariff."""

    currency = CurrencyField()
    price_per_kwh = DecimalStringField(required=False, default=Decimal(0))
    price_per_minute = DecimalStringField(required=False, default=Decimal(0))
    session_fee = DecimalStringField(required=False, default=Decimal(0))
    vat_rate_percent = VatRateField(required=False, default=Decimal(0))
    preauthorize_amount = AmountField()
    is_default = serializers.BooleanField(required=False, default=False)

    class Meta:
        model = Tariff
        fields = [
            "id",
            "name",
            "currency",
            "price_per_kwh",
            "price_per_minute",
            "session_fee",
            "vat_rate_percent",
            "preauthorize_amount",
            "is_default",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"name": {"max_length": 200}}


class TariffPricesSerializer(Serializer):
    price_per_kwh = DecimalStringField()
    price_per_minute = DecimalStringField()
    session_fee = DecimalStringField()
    vat_rate_percent = VatRateField()


class CostSerializer(Serializer):
    """Minor units. `subtotal = round(energy + time + session_fee)` on unrounded parts (see `charging.costs`)."""

    energy = serializers.IntegerField()
    time = serializers.IntegerField()
    session_fee = serializers.IntegerField()
    subtotal = serializers.IntegerField()
    vat = serializers.IntegerField()
    total = serializers.IntegerField()


class ChargeSessionSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    terminal_id = serializers.CharField(read_only=True)
    mapping_id = serializers.CharField(read_only=True)
    payment_intent_id = serializers.CharField(read_only=True)
    tariff = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField()
    power_kw = serializers.SerializerMethodField()
    amount_refunded = serializers.IntegerField(
        source="payment_intent.amount_refunded", read_only=True, help_text="The sum of its intent's succeeded refunds."
    )

    class Meta:
        model = ChargeSession
        fields = [
            "id",
            "object",
            "status",
            "terminal_id",
            "station_id",
            "connector_id",
            "mapping_id",
            "payment_intent_id",
            "currency",
            "preauth_amount",
            "tariff",
            "energy_wh",
            "duration_seconds",
            "power_kw",
            "last_progress_at",
            "cost",
            "amount_captured",
            "amount_refunded",
            "stop_reason",
            "cpms_session_id",
            "started_at",
            "completed_at",
            "created_at",
            "updated_at",
            "metadata",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        # Every session request, list page and event payload: the output of the declared fields without building
        # them per instance (the schema is still built from them; tests/test_charging_sessions.py compares both).
        return charge_session_data(instance)

    def get_object(self, obj) -> str:
        return "charge_session"

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_power_kw(self, obj):
        # A measurement, not money: a JSON number (events store the same JSON).
        return float(obj.power_kw) if obj.power_kw is not None else None

    @extend_schema_field(TariffPricesSerializer)
    def get_tariff(self, obj) -> dict:
        return {
            "price_per_kwh": decimal_string(obj.price_per_kwh),
            "price_per_minute": decimal_string(obj.price_per_minute),
            "session_fee": decimal_string(obj.session_fee),
            "vat_rate_percent": decimal_string(obj.vat_rate_percent),
        }

    @extend_schema_field(CostSerializer)
    def get_cost(self, obj) -> dict:
        return {
            "energy": obj.cost_energy,
            "time": obj.cost_time,
            "session_fee": obj.cost_session_fee,
            "subtotal": obj.cost_subtotal,
            "vat": obj.cost_vat,
            "total": obj.cost_total,
        }


_STATUSES = choices_of(ChargeSessionStatus)
_STOP_REASONS = choices_of(StopReason)


def _amount_refunded(session: ChargeSession) -> int:
    # Read with the session (`charge_session_for_update`), or from its payment intent.
    known = session.__dict__.get("intent_amount_refunded")
    return int(known if known is not None else session.payment_intent.amount_refunded)


def charge_session_data(session: ChargeSession) -> dict:
    """A charge session as the API shows it (ChargeSessionSerializer's fields)."""
    s = session
    return {
        "id": s.id,
        "object": "charge_session",
        "status": choice(s.status, _STATUSES),
        "terminal_id": text(s.terminal_id),
        "station_id": text(s.station_id),
        "connector_id": text(s.connector_id),
        "mapping_id": text(s.mapping_id),
        "payment_intent_id": text(s.payment_intent_id),
        "currency": text(s.currency),
        "preauth_amount": None if s.preauth_amount is None else int(s.preauth_amount),
        "tariff": {
            "price_per_kwh": decimal_string(s.price_per_kwh),
            "price_per_minute": decimal_string(s.price_per_minute),
            "session_fee": decimal_string(s.session_fee),
            "vat_rate_percent": decimal_string(s.vat_rate_percent),
        },
        "energy_wh": None if s.energy_wh is None else int(s.energy_wh),
        "duration_seconds": None if s.duration_seconds is None else int(s.duration_seconds),
        # A measurement, not money: a JSON number (events store the same JSON).
        "power_kw": None if s.power_kw is None else float(s.power_kw),
        "last_progress_at": datetime_text(s.last_progress_at),
        "cost": {
            "energy": s.cost_energy,
            "time": s.cost_time,
            "session_fee": s.cost_session_fee,
            "subtotal": s.cost_subtotal,
            "vat": s.cost_vat,
            "total": s.cost_total,
        },
        "amount_captured": None if s.amount_captured is None else int(s.amount_captured),
        "amount_refunded": _amount_refunded(s),
        "stop_reason": choice(s.stop_reason, _STOP_REASONS),
        "cpms_session_id": text(s.cpms_session_id),
        "started_at": datetime_text(s.started_at),
        "completed_at": datetime_text(s.completed_at),
        "created_at": datetime_text(s.created_at),
        "updated_at": datetime_text(s.updated_at),
        "metadata": s.metadata,
    }


class ChargeSessionStartSerializer(Serializer):
    terminal_id = serializers.CharField(max_length=40)
    station_id = serializers.CharField(max_length=100)
    connector_id = serializers.CharField(max_length=36)
    payment_intent_id = serializers.CharField(max_length=40)
    metadata = MetadataField()


class ChargeSessionProgressSerializer(Serializer):
    energy_wh = serializers.IntegerField(min_value=0, max_value=10**9, help_text="Cumulative Wh since the start.")
    measured_at = RequestTimeField()
    power_kw = serializers.DecimalField(
        max_digits=9, decimal_places=3, min_value=Decimal(0), required=False, allow_null=True
    )


class ChargeSessionCompleteSerializer(Serializer):
    energy_wh = serializers.IntegerField(
        min_value=0,
        max_value=10**9,
        required=False,
        allow_null=True,
        help_text="Final cumulative Wh; default: the last reading.",
    )
    ended_at = RequestTimeField(
        required=False, allow_null=True, help_text="When charging ended; default: now. Billed time runs to it."
    )
    stop_reason = serializers.ChoiceField(
        choices=[StopReason.COMPLETED, StopReason.EV_DISCONNECTED, StopReason.STOPPED_BY_OPERATOR],
        required=False,
        allow_null=True,
        help_text="Default `completed`; a session stopped by its cost cap keeps `cost_cap_reached`.",
    )


class QuoteQuerySerializer(Serializer):
    station_id = serializers.CharField(max_length=100)
    connector_id = serializers.CharField(max_length=36)


class QuoteDisplaySerializer(Serializer):
    """VAT-inclusive figures the terminal shows before the tap: unit prices to 4 decimals, the session fee to
    the currency's minor unit; major units, decimal strings."""

    price_per_kwh_incl_vat = serializers.CharField()
    price_per_minute_incl_vat = serializers.CharField()
    session_fee_incl_vat = serializers.CharField()


class QuoteSerializer(Serializer):
    station_id = serializers.CharField()
    connector_id = serializers.CharField()
    connector_status = serializers.CharField(help_text="OCPI status; CHARGING while a session runs on it.")
    tariff = TariffSerializer()
    preauthorize_amount = serializers.IntegerField()
    display = QuoteDisplaySerializer()


def quote_data(*, connector, tariff: Tariff, busy: bool) -> dict:
    fee_places = money.exponent(tariff.currency)
    vat = tariff.vat_rate_percent
    return {
        "station_id": connector.mapping.station_id,
        "connector_id": connector.connector_id,
        "connector_status": "CHARGING" if busy else connector.status,
        "tariff": TariffSerializer(tariff).data,
        "preauthorize_amount": tariff.preauthorize_amount,
        "display": {
            "price_per_kwh_incl_vat": f"{price_incl_vat(tariff.price_per_kwh, vat):f}",
            "price_per_minute_incl_vat": f"{price_incl_vat(tariff.price_per_minute, vat):f}",
            "session_fee_incl_vat": f"{price_incl_vat(tariff.session_fee, vat, places=fee_places):f}",
        },
    }
