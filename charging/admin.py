from django.contrib import admin
from django.utils.html import format_html_join

from evpay.admin import LedgerAdmin, OperatorScopedAdmin, is_platform_admin, run_service_action, terminal_serial
from evpay.core import money

from . import services
from .models import ChargeSession, StopReason, Tariff


@admin.register(Tariff)
class TariffAdmin(OperatorScopedAdmin):
    list_display = (
        "id",
        "name",
        "operator",
        "currency",
        "price_per_kwh",
        "price_per_minute",
        "session_fee",
        "vat_rate_percent",
        "preauthorize_amount",
        "is_default",
        "updated_at",
    )
    money_fields = ("preauthorize_amount",)
    list_filter = ("currency", "is_default")
    search_fields = ("id", "name")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    readonly_fields = ("id", "created_at", "updated_at")

    def get_exclude(self, request, obj=None):
        # Operator staff create tariffs for their own operator only.
        return () if is_platform_admin(request) else ("operator",)

    def save_model(self, request, obj, form, change):
        if not is_platform_admin(request):
            obj.operator_id = request.user.operator_id
        # Through the services, so that making a tariff the default moves the flag in one transaction.
        fields = {name: form.cleaned_data[name] for name in services.TARIFF_FIELDS if name in form.cleaned_data}
        if change:
            services.tariff_update(tariff=obj, **{k: v for k, v in fields.items() if k in form.changed_data})
        else:
            created = services.tariff_create(operator=obj.operator, **fields)
            obj.pk = created.pk


@admin.register(ChargeSession)
class ChargeSessionAdmin(LedgerAdmin):
    list_display = (
        "id",
        "operator",
        "status",
        "connector",
        "terminal_column",
        "energy_kwh",
        "cost_total",
        "amount_captured",
        "created_at",
    )
    money_fields = (
        "preauth_amount",
        "cost_energy",
        "cost_time",
        "cost_session_fee",
        "cost_subtotal",
        "cost_vat",
        "cost_total",
        "amount_captured",
    )
    list_filter = ("status", "station_id", ("terminal", admin.RelatedOnlyFieldListFilter), "stop_reason")
    search_fields = (
        "id",
        "station_id",
        "payment_intent__id",
        "cpms_session_id",
        "terminal__serial_number",
        "payment_intent__payment_method__last4",
        "payment_intent__processor_reference",
    )
    date_hierarchy = "created_at"
    list_select_related = ("operator", "terminal")
    actions = ("complete_now",)

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "cost_breakdown"]

    money_labels = {"cost_total": "total", "amount_captured": "captured"}

    @admin.display(description="station / connector", ordering="station_id")
    def connector(self, obj):
        return f"{obj.station_id} / {obj.connector_id}"

    @admin.display(description="terminal", ordering="terminal__serial_number")
    def terminal_column(self, obj):
        return terminal_serial(obj)

    @admin.display(description="energy", ordering="energy_wh")
    def energy_kwh(self, obj):
        return f"{obj.energy_wh / 1000:.3f} kWh"

    @admin.display(description="cost breakdown (major units)")
    def cost_breakdown(self, obj):
        rows = [
            ("energy", obj.cost_energy),
            ("time", obj.cost_time),
            ("session fee", obj.cost_session_fee),
            ("subtotal", obj.cost_subtotal),
            ("VAT", obj.cost_vat),
            ("total", obj.cost_total),
            ("captured", obj.amount_captured),
        ]
        return format_html_join(
            "",
            "<div>{}: {} {}</div>",
            ((label, money.to_major_units(value, obj.currency), obj.currency) for label, value in rows),
        )

    @admin.action(description="Complete now (stopped by operator; captures the cost)")
    def complete_now(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda s: services.charge_session_complete(session=s, stop_reason=StopReason.STOPPED_BY_OPERATOR),
            "Completed",
        )
