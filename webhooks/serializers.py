from rest_framework import serializers

from evpay.api.serializers import Serializer

from .models import ALL_EVENT_TYPES, EVENT_TYPES, Event, WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    secret_hint = serializers.CharField(read_only=True, help_text="The first 8 characters of the secret.")

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "secret_hint",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookSubscriptionWithSecretSerializer(WebhookSubscriptionSerializer):
    """Only in the response of create and of a PUT with rotate_secret: the one time the secret is shown."""

    secret = serializers.CharField(read_only=True, help_text="`whsec_` + base64 of 32 random bytes. Shown once.")

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookSubscriptionUpdatedSerializer(WebhookSubscriptionSerializer):
    """The response of a PUT (schema only): `secret` is there only when `rotate_secret` was true."""

    secret = serializers.CharField(
        required=False, help_text="Only after `rotate_secret: true`: the new secret, shown this once."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class EventTypesField(serializers.ListField):
    child = serializers.ChoiceField(choices=[*EVENT_TYPES, ALL_EVENT_TYPES])

    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", len(EVENT_TYPES) + 1)
        kwargs.setdefault("help_text", 'Event types to receive, or ["*"] for all.')
        super().__init__(**kwargs)


class WebhookSubscriptionCreateSerializer(Serializer):
    url = serializers.URLField(max_length=2048)
    event_types = EventTypesField()
    description = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class WebhookSubscriptionUpdateSerializer(Serializer):
    url = serializers.URLField(max_length=2048)
    event_types = EventTypesField()
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    is_active = serializers.BooleanField(required=False, help_text="true re-enables a disabled subscription.")
    rotate_secret = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Make a new secret (returned once); the old one keeps signing alongside it for 24 h.",
    )


class WebhookDeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDeliveryAttempt
        fields = ["number", "at", "response_status", "duration_ms", "error"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    subscription_id = serializers.CharField(read_only=True)
    event_id = serializers.CharField(read_only=True)
    attempts = WebhookDeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription_id",
            "event_id",
            "event_type",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_response_status",
            "last_error",
            "attempts",
            "created_at",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    """Contract section 0: `id`, `type` and `data` are exactly what every delivery of the event sends."""

    object = serializers.SerializerMethodField(help_text='Always `"event"`.')
    data = serializers.JSONField(  # type: ignore[assignment]  # the contract's field name, not Serializer.data
        help_text="`object`: the resource as the API returned it when the event happened; some types add fields "
        "next to it (`terminal.status_changed`: `previous_status`)."
    )

    class Meta:
        model = Event
        fields = ["id", "object", "type", "created_at", "data"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "event"


class EventRedeliverSerializer(Serializer):
    subscription_id = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Send to this active subscription only (even if its event types no longer include the event's). "
        "Without it: every active subscription whose event types match the event now.",
    )


class EventRedeliveriesSerializer(Serializer):
    deliveries = WebhookDeliverySerializer(many=True, read_only=True)
