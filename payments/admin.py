from django.contrib import admin

from evpay.admin import LedgerAdmin, run_service_action

from . import services
from .models import PaymentIntent, Refund, RefundReason, VoidReason


@admin.register(PaymentIntent)
class PaymentIntentAdmin(LedgerAdmin):
    list_display = (
        "id",
        "operator",
        "status",
        "amount",
        "amount_captured",
        "amount_refunded",
        "currency",
        "terminal",
        "created_at",
        "capture_before",
    )
    list_filter = ("status", "currency", "processor", "void_reason")
    search_fields = ("id", "processor_reference", "authorization_code", "description")
    date_hierarchy = "created_at"
    list_select_related = ("operator", "terminal")
    actions = ("capture_selected", "void_selected", "refund_selected")

    @admin.action(description="Capture the whole capturable amount")
    def capture_selected(self, request, queryset):
        run_service_action(self, request, queryset, lambda i: services.payment_intent_capture(intent=i), "Captured")

    @admin.action(description="Void (reason: requested by customer)")
    def void_selected(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda i: services.payment_intent_void(intent=i, reason=VoidReason.REQUESTED_BY_CUSTOMER),
            "Voided",
        )

    @admin.action(description="Refund (all that is still refundable; reason: requested by customer)")
    def refund_selected(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda i: services.refund_create(intent=i, reason=RefundReason.REQUESTED_BY_CUSTOMER),
            "Refunds created",
        )


@admin.register(Refund)
class RefundAdmin(LedgerAdmin):
    list_display = ("id", "operator", "payment_intent", "status", "amount", "currency", "reason", "created_at")
    list_filter = ("status", "reason", "currency")
    search_fields = ("id", "payment_intent__id", "processor_reference")
    date_hierarchy = "created_at"
    list_select_related = ("operator", "payment_intent")
