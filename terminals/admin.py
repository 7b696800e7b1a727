from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from evpay.admin import LedgerAdmin, OperatorScopedInline, run_service_action

from . import services
from .models import Terminal, TerminalHealthEvent, TerminalStatus

INLINE_EVENTS = 50


class LatestEventsFormSet(BaseInlineFormSet):
    """Only the latest events: a terminal collects tens of thousands within the retention window."""

    def get_queryset(self):
        if not hasattr(self, "_latest_events"):
            self._latest_events = super().get_queryset().order_by("-occurred_at")[:INLINE_EVENTS]
        return self._latest_events


class HealthEventInline(OperatorScopedInline):
    """Shown to whoever may see the terminal; what a terminal reported is never added or changed here."""

    model = TerminalHealthEvent
    formset = LatestEventsFormSet
    fields = ("occurred_at", "type", "code", "message", "metrics", "created_at")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = f"Health events (latest {INLINE_EVENTS})"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Terminal)
class TerminalAdmin(LedgerAdmin):
    """View-only pages, never added (registration emits `terminal.registered`: through the API) nor deleted;
    status changes only through the actions (services, with their events)."""

    list_display = (
        "serial_number",
        "id",
        "operator",
        "status",
        "vendor",
        "model",
        "station_id",
        "last_seen_at",
        "health_errors_24h",
    )
    list_filter = ("status", "vendor", "model")
    search_fields = ("serial_number", "id", "station_id")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    inlines = (HealthEventInline,)
    actions = ("set_maintenance", "back_online")

    @admin.action(description="Set maintenance", permissions=["change"])
    def set_maintenance(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda t: services.terminal_status_set(
                terminal=t, status=TerminalStatus.MAINTENANCE, reason=f"Set in the admin by {request.user}"
            ),
            "Set to maintenance",
        )

    @admin.action(description="Back online", permissions=["change"])
    def back_online(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda t: services.terminal_status_set(
                terminal=t, status=TerminalStatus.ONLINE, reason=f"Set in the admin by {request.user}"
            ),
            "Back online",
        )


@admin.register(TerminalHealthEvent)
class TerminalHealthEventAdmin(LedgerAdmin):
    list_display = ("id", "terminal", "operator", "type", "code", "occurred_at", "created_at")
    list_filter = ("type",)
    search_fields = ("terminal__serial_number", "code")
    list_select_related = ("terminal", "operator")
    date_hierarchy = "occurred_at"
