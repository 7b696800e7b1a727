from django import forms
from django.contrib import admin

from evpay.admin import (
    LedgerAdmin,
    OperatorScopedAdmin,
    OperatorScopedInline,
    is_platform_admin,
    run_service_action,
    terminal_serial,
)
from evpay.core.errors import DomainError
from evpay.core.models import Operator

from . import services
from .models import PaymentIntent, Refund, RefundReason, StripeAccount, VoidReason


class RefundInline(OperatorScopedInline):
    """The intent's refunds, read-only, as the intent page around them (a ledger) is."""

    model = Refund
    fields = ("id", "status", "amount", "reason", "failure_reason", "processor_reference", "created_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PaymentIntent)
class PaymentIntentAdmin(LedgerAdmin):
    list_display = (
        "id",
        "operator",
        "status",
        "amount",
        "amount_captured",
        "amount_refunded",
        "card",
        "terminal_column",
        "created_at",
    )
    money_fields = (
        "amount",
        "amount_authorized",
        "amount_capturable",
        "amount_captured",
        "amount_refunded",
        "amount_refund_pending",
    )
    money_labels = {"amount_captured": "captured", "amount_refunded": "refunded"}
    readable_fields = {"payment_method": "card", "last_payment_error": "payment_error"}
    list_filter = ("status", "currency", "processor", "void_reason")
    # Card last4, the processor's reference, the station of the intent's charge session.
    search_fields = (
        "id",
        "processor_reference",
        "authorization_code",
        "description",
        "payment_method__last4",
        "charge_session__station_id",
    )
    date_hierarchy = "created_at"
    list_select_related = ("operator", "terminal")
    actions = ("capture_selected", "void_selected", "refund_selected")
    inlines = (RefundInline,)

    @admin.display(description="terminal", ordering="terminal__serial_number")
    def terminal_column(self, obj):
        return terminal_serial(obj)

    @admin.display(description="card")
    def card(self, obj):
        method = obj.payment_method or {}
        if not method.get("last4"):
            return "-"
        return f"{(method.get('brand') or 'card').title()} •••• {method['last4']}"

    @admin.display(description="last payment error")
    def payment_error(self, obj):
        error = obj.last_payment_error or {}
        if not error:
            return "-"
        return f"{error.get('code')} ({error.get('decline_code') or '-'}): {error.get('message') or ''}"

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
    list_display = ("id", "operator", "payment_intent", "status", "amount", "reason", "created_at")
    money_fields = ("amount",)
    list_filter = ("status", "reason", "currency")
    search_fields = ("id", "payment_intent__id", "processor_reference")
    date_hierarchy = "created_at"
    list_select_related = ("operator", "payment_intent")


class StripeAccountForm(forms.ModelForm):
    operator = forms.ModelChoiceField(queryset=Operator.objects.none())
    new_secret_key = forms.CharField(
        label="Stripe secret key",
        widget=forms.PasswordInput(render_value=False),
        help_text="sk_... or rk_...; write-only: stored encrypted, never shown again.",
    )

    class Meta:
        model = StripeAccount
        fields = ()

    def clean_new_secret_key(self):
        try:
            return services.stripe_secret_key_check(self.cleaned_data["new_secret_key"])
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from exc


@admin.register(StripeAccount)
class StripeAccountAdmin(OperatorScopedAdmin):
    """An operator's own Stripe key, which overrides STRIPE_SECRET_KEY for its intents. Only its hint shows."""

    form = StripeAccountForm
    list_display = ("operator", "key_hint", "updated_at")
    search_fields = ("operator__name",)
    list_select_related = ("operator",)
    readonly_fields = ("key_hint", "updated_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        operators = Operator.objects.all()
        if not is_platform_admin(request):
            operators = operators.filter(pk=request.user.operator_id)
        form.base_fields["operator"].queryset = operators
        form.base_fields["operator"].initial = obj.operator_id if obj else getattr(request.user, "operator_id", None)
        form.base_fields["operator"].disabled = obj is not None
        return form

    def save_model(self, request, obj, form, change):
        operator = obj.operator if change else form.cleaned_data["operator"]
        saved = services.stripe_account_set(operator=operator, secret_key=form.cleaned_data["new_secret_key"])
        obj.pk, obj.operator, obj.key_hint = saved.pk, saved.operator, saved.key_hint
