from django.contrib import admin

from evpay.admin import LedgerAdmin, OperatorScopedInline, run_service_action, scoped_values_filter

from . import services
from .models import Event, WebhookDelivery, WebhookDeliveryAttempt, WebhookPayload, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(LedgerAdmin):
    """Created through the API (which shows the secret once); here never more than the hint."""

    list_display = ("id", "operator", "url", "is_active", "disabled_reason", "secret_hint", "created_at")
    list_filter = ("is_active", "disabled_reason")
    search_fields = ("id", "url", "description")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    exclude = ("secret", "previous_secret")
    actions = ("send_test_event", "deactivate")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude] + ["secret_hint"]

    @admin.action(description="Send test event")
    def send_test_event(self, request, queryset):
        run_service_action(
            self, request, queryset, lambda s: services.webhook_test_send(subscription=s), "Test event queued"
        )

    @admin.action(description="Deactivate")
    def deactivate(self, request, queryset):
        run_service_action(
            self, request, queryset, lambda s: services.webhook_subscription_deactivate(subscription=s), "Deactivated"
        )


class WebhookDeliveryAttemptInline(OperatorScopedInline):
    """Read-only, as the delivery page around it (a ledger) is."""

    model = WebhookDeliveryAttempt
    fields = ("number", "at", "response_status", "duration_ms", "error", "response_body")
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LedgerAdmin):
    list_display = (
        "id",
        "operator",
        "event_type",
        "status",
        "attempts",
        "last_http_status",
        "created_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("id", "event__id", "subscription__id")  # a subscription's deliveries: search its whs_ id
    list_select_related = ("operator", "subscription")
    date_hierarchy = "created_at"
    exclude = ("payload",)
    inlines = (WebhookDeliveryAttemptInline,)
    actions = ("retry_now",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "payload"]

    @admin.display(description="attempts", ordering="attempt_count")
    def attempts(self, obj):
        return obj.attempt_count

    @admin.display(description="last HTTP", ordering="last_response_status")
    def last_http_status(self, obj):
        return obj.last_response_status or "-"

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        run_service_action(
            self, request, queryset, lambda d: services.webhook_delivery_retry(delivery=d), "Retry queued"
        )


@admin.register(Event)
class EventAdmin(LedgerAdmin):
    list_display = ("id", "operator", "type", "object_id", "created_at")
    list_filter = ("type",)
    search_fields = ("id", "object_id")
    list_select_related = ("operator",)
    date_hierarchy = "created_at"


@admin.register(WebhookDeliveryAttempt)
class WebhookDeliveryAttemptAdmin(LedgerAdmin):
    operator_field = "delivery__operator"
    list_display = ("__str__", "delivery", "number", "at", "response_status", "duration_ms", "error")
    list_filter = ("response_status",)
    search_fields = ("delivery__id", "delivery__event__id")
    date_hierarchy = "at"
    list_select_related = ("delivery",)


@admin.register(WebhookPayload)
class WebhookPayloadAdmin(LedgerAdmin):
    """The exact bytes signed and sent for an event."""

    operator_field = "event__operator"
    list_display = ("event", "event_type", "created_at")
    list_filter = (scoped_values_filter("event__type", "type"),)
    search_fields = ("event__id",)
    date_hierarchy = "created_at"
    list_select_related = ("event",)

    @admin.display(description="type", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type
