from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evpay.api.fields import AmountField, CurrencyField, MetadataField, OperatorObjectField
from evpay.api.representation import datetime_text
from evpay.api.serializers import Serializer
from terminals.models import Terminal

from .models import PaymentIntent, Refund, RefundReason, VoidReason
from .selectors import KNOWN_SESSION_ID, intent_uses


class PaymentMethodSerializer(Serializer):
    type = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    fingerprint = serializers.CharField()


class PaymentErrorSerializer(Serializer):
    code = serializers.CharField()
    decline_code = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class PaymentIntentSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    terminal_id = serializers.CharField(allow_null=True, read_only=True)
    charge_session_id = serializers.SerializerMethodField()
    payment_method = PaymentMethodSerializer(allow_null=True, read_only=True)
    last_payment_error = PaymentErrorSerializer(allow_null=True, read_only=True)

    class Meta:
        model = PaymentIntent
        fields = [
            "id",
            "object",
            "amount",
            "currency",
            "status",
            "amount_authorized",
            "amount_capturable",
            "amount_captured",
            "amount_refunded",
            "capture_before",
            "authorized_at",
            "captured_at",
            "voided_at",
            "void_reason",
            "payment_method",
            "processor",
            "processor_reference",
            "authorization_code",
            "last_payment_error",
            "terminal_id",
            "charge_session_id",
            "description",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        # The hot path of every payment request and list page: the output of the declared fields (the schema is
        # still built from them; a test compares both) without building them per instance. Built once per saved
        # state: the event payload and the response of the same request share it.
        cached = instance.__dict__.get("_representation")
        if cached is not None and cached[0] == instance.updated_at:
            return cached[1]
        data = payment_intent_data(instance, uses=self.context.get("intent_uses"))
        instance._representation = (instance.updated_at, data)
        return data

    def get_object(self, obj) -> str:
        return "payment_intent"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_charge_session_id(self, obj) -> str | None:
        """Kept by the charging app (`selectors.intent_uses`): a list passes `intent_uses` for its page in the
        context (one lookup), a single intent looks it up."""
        uses = self.context.get("intent_uses")
        if uses is None:
            uses = intent_uses(intent_ids=[obj.pk])
        use = uses.get(obj.pk)
        return use.session_id if use is not None else None


class PaymentIntentCreateSerializer(Serializer):
    amount = AmountField()
    currency = CurrencyField()
    terminal_id = OperatorObjectField(queryset=Terminal.objects.all(), required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    metadata = MetadataField()


class CardPresentSerializer(Serializer):
    type = serializers.ChoiceField(choices=["card_present"])
    token = serializers.CharField(max_length=200)


class PaymentIntentAuthorizeSerializer(Serializer):
    payment_method = CardPresentSerializer()


class PaymentIntentCaptureSerializer(Serializer):
    # Bounds are checked against the intent in the service (`amount_exceeds_capturable`).
    amount_to_capture = AmountField(required=False, allow_null=True, min_value=None, max_value=None)


class PaymentIntentVoidSerializer(Serializer):
    reason = serializers.ChoiceField(choices=VoidReason.choices, required=False, allow_null=True)


class RefundSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    payment_intent_id = serializers.CharField(read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "object",
            "payment_intent_id",
            "amount",
            "currency",
            "status",
            "reason",
            "failure_reason",
            "processor_reference",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "refund"


class RefundCreateSerializer(Serializer):
    payment_intent_id = serializers.CharField(max_length=40)
    # Bounds are checked against the intent in the service (`amount_exceeds_refundable`).
    amount = AmountField(required=False, allow_null=True, help_text="Default: all that is still refundable.")
    reason = serializers.ChoiceField(choices=RefundReason.choices, required=False, allow_null=True)
    metadata = MetadataField()


def payment_intent_data(intent: PaymentIntent, *, uses: dict | None = None) -> dict:
    """A payment intent as the API shows it (contract section 1). `uses`: `intent_uses` of a page, if known."""
    method, error = intent.payment_method, intent.last_payment_error
    if uses is None and KNOWN_SESSION_ID in intent.__dict__:  # read with the intent
        session_id = intent.__dict__[KNOWN_SESSION_ID]
    else:
        use = (uses if uses is not None else intent_uses(intent_ids=[intent.pk])).get(intent.pk)
        session_id = use.session_id if use is not None else None
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "currency": intent.currency,
        "status": str(intent.status),
        "amount_authorized": intent.amount_authorized,
        "amount_capturable": intent.amount_capturable,
        "amount_captured": intent.amount_captured,
        "amount_refunded": intent.amount_refunded,
        "capture_before": datetime_text(intent.capture_before),
        "authorized_at": datetime_text(intent.authorized_at),
        "captured_at": datetime_text(intent.captured_at),
        "voided_at": datetime_text(intent.voided_at),
        "void_reason": None if intent.void_reason is None else str(intent.void_reason),
        "payment_method": None
        if method is None
        else {name: str(method[name]) for name in ("type", "brand", "last4", "fingerprint")},
        "processor": intent.processor,
        "processor_reference": intent.processor_reference,
        "authorization_code": intent.authorization_code,
        "last_payment_error": None
        if error is None
        else {
            "code": str(error["code"]),
            "decline_code": None if error.get("decline_code") is None else str(error["decline_code"]),
            "message": str(error["message"]),
        },
        "terminal_id": intent.terminal_id,
        "charge_session_id": session_id,
        "description": intent.description,
        "metadata": intent.metadata,
        "created_at": datetime_text(intent.created_at),
        "updated_at": datetime_text(intent.updated_at),
    }
