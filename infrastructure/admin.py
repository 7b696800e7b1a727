from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from evpay.admin import (
    LedgerAdmin,
    OperatorScopedAdmin,
    OperatorScopedInline,
    PlatformAdmin,
    is_platform_admin,
    run_service_action,
    scoped_values_filter,
)
from evpay.core.errors import DomainError

from . import services
from .adapters.registry import adapter_requires_base_url, adapter_types
from .models import AdapterCall, AdapterCallCounter, AdapterConfig, Connector, SimulatedConnectorState, StationMapping
from .selectors import station_tariff_choices, station_tariff_ids

_CONNECTIVITY_FIELDS = (
    "connectivity_test_status",
    "connectivity_test_latency_ms",
    "connectivity_test_error",
    "connectivity_tested_at",
)


CONNECTOR_SPEC_FIELDS = ("connector_id", "evse_uid", "standard", "power_type", "max_power_kw")


class ConnectorInline(OperatorScopedInline):
    """Saved with the mapping through the services. Removing a connector goes through the API (it checks for a
    running session)."""

    model = Connector
    fields = (*CONNECTOR_SPEC_FIELDS, "status", "status_updated_at")
    readonly_fields = ("status", "status_updated_at")  # statuses come from the CPMS


class StationMappingForm(forms.ModelForm):
    adapter_type = forms.ChoiceField(choices=lambda: [(name, name) for name in adapter_types()])
    # Kept by the charging app (see `selectors.StationTariffLink`); the admin narrows the choices per operator.
    tariff = forms.ChoiceField(required=False, help_text="Else the operator's default tariff applies.")
    tariff_operator_id: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = station_tariff_choices(operator_id=self.tariff_operator_id)
        self.fields["tariff"].choices = [("", "---------"), *choices]
        if self.instance.pk:
            self.initial["tariff"] = station_tariff_ids(mapping_ids=[self.instance.pk]).get(self.instance.pk, "")

    class Meta:
        model = StationMapping
        fields = ("operator", "station_id", "adapter_type", "cpms_station_id", "tariff", "is_active", "metadata")


@admin.register(StationMapping)
class StationMappingAdmin(OperatorScopedAdmin):
    form = StationMappingForm
    inlines = (ConnectorInline,)
    list_display = (
        "id",
        "station_id",
        "operator",
        "adapter_type",
        "cpms_station_id",
        "is_active",
        "connectivity_test_status",
        "connectivity_tested_at",
        "created_at",
    )
    list_filter = ("adapter_type", "is_active", "connectivity_test_status")
    search_fields = ("id", "station_id", "cpms_station_id")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    readonly_fields = (*_CONNECTIVITY_FIELDS, "created_at", "updated_at")
    actions = ("test_connectivity", "delete_mappings")
    _REFUSED = "_evpay_service_refused"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_exclude(self, request, obj=None):
        return () if is_platform_admin(request) else ("operator",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        operator_id = None if is_platform_admin(request) else request.user.operator_id
        return type(form.__name__, (form,), {"tariff_operator_id": operator_id})

    def save_model(self, request, obj, form, change):
        pass  # saved in save_related, with the connectors, through the services

    def save_related(self, request, form, formsets, change):
        """The mapping and its connectors in one service call, which checks for running sessions; a refusal is
        shown on the form and changes nothing."""
        data = form.cleaned_data
        for formset in formsets:
            formset.save(commit=False)  # saves nothing; fills in what the admin's change message reads
        connectors = [
            {name: f.cleaned_data[name] for name in CONNECTOR_SPEC_FIELDS}
            for formset in formsets
            for f in formset.forms
            if f.cleaned_data.get("connector_id")
        ]
        try:
            if change:
                changed = {
                    name: data[name]
                    for name in form.changed_data
                    if name in ("station_id", "adapter_type", "cpms_station_id", "is_active", "metadata")
                }
                if "tariff" in form.changed_data:
                    changed["tariff_id"] = data["tariff"] or None
                services.mapping_update(mapping=form.instance, connectors=connectors, **changed)
            else:
                operator = data.get("operator") if is_platform_admin(request) else request.user.operator
                created = services.mapping_create(
                    operator=operator,
                    station_id=data["station_id"],
                    adapter_type=data["adapter_type"],
                    cpms_station_id=data["cpms_station_id"],
                    tariff_id=data.get("tariff") or None,
                    is_active=data["is_active"],
                    connectors=connectors,
                    metadata=data.get("metadata") or {},
                )
                form.instance.pk = created.pk
        except DomainError as exc:
            setattr(request, self._REFUSED, True)
            self.message_user(request, exc.detail, messages.ERROR)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, self._REFUSED, False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, self._REFUSED, False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # the "Delete" action soft-deletes and refuses mappings in use

    @admin.action(description="Test connectivity")
    def test_connectivity(self, request, queryset):
        run_service_action(
            self,
            request,
            queryset,
            lambda m: services.mapping_connectivity_test_request(mapping=m),
            "Connectivity test queued",
        )

    @admin.action(description="Delete (refused while a charge session runs)")
    def delete_mappings(self, request, queryset):
        run_service_action(self, request, queryset, lambda m: services.mapping_delete(mapping=m), "Deleted")


@admin.register(Connector)
class ConnectorAdmin(OperatorScopedAdmin):
    """Connector statuses as the CPMS reported them: read-only."""

    list_display = (
        "mapping",
        "connector_id",
        "evse_uid",
        "status",
        "status_updated_at",
        "standard",
        "power_type",
        "max_power_kw",
    )
    list_filter = ("status", "power_type", scoped_values_filter("mapping__adapter_type", "adapter type"))
    search_fields = ("mapping__station_id", "connector_id", "evse_uid")
    date_hierarchy = "created_at"
    list_select_related = ("mapping",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(mapping__deleted_at__isnull=True)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AdapterConfigForm(forms.ModelForm):
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    credentials_token = forms.CharField(
        required=False,
        label="Credentials token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: never shown again. Leave empty to keep the stored credentials.",
    )
    clear_credentials = forms.BooleanField(required=False, help_text="Remove the stored credentials.")

    class Meta:
        model = AdapterConfig
        fields = ("enabled", "base_url", "timeout_ms", "max_retries", "poll_interval_s")

    def clean(self):
        data = super().clean()
        if data.get("enabled") and adapter_requires_base_url(self.instance.adapter_type) and not data.get("base_url"):
            self.add_error("base_url", "Required while the adapter is enabled.")
        return data


@admin.register(AdapterConfig)
class AdapterConfigAdmin(OperatorScopedAdmin):
    form = AdapterConfigForm
    list_display = (
        "adapter_type",
        "operator",
        "enabled",
        "health_status",
        "circuit_state",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "last_polled_at",
    )
    list_filter = ("adapter_type", "enabled", "circuit_state", "health_status")
    search_fields = ("adapter_type", "operator__name")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    readonly_fields = (
        "operator",
        "adapter_type",
        "credentials_set",
        "circuit_state",
        "consecutive_failures",
        "circuit_opened_at",
        "last_success_at",
        "last_failure_at",
        "last_polled_at",
        "health_status",
        "updated_at",
    )

    @admin.display(boolean=True)
    def credentials_set(self, obj):
        return obj.credentials_set

    def has_add_permission(self, request):
        return False  # one per adapter type, made on first use

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        credentials = services.UNSET
        if data.get("clear_credentials"):
            credentials = None
        elif data.get("credentials_token"):
            credentials = {"token": data["credentials_token"]}
        services.adapter_config_update(
            operator=obj.operator,
            adapter_type=obj.adapter_type,
            enabled=data["enabled"],
            base_url=data["base_url"],
            timeout_ms=data["timeout_ms"],
            max_retries=data["max_retries"],
            poll_interval_s=data["poll_interval_s"],
            credentials=credentials,
        )


@admin.register(AdapterCall)
class AdapterCallAdmin(LedgerAdmin):
    """Recent adapter calls (the 5-minute health figures); pruned by age."""

    list_display = ("id", "operator", "adapter_type", "operation", "outcome", "latency_ms", "error", "created_at")
    list_filter = ("adapter_type", "operation", "outcome")
    search_fields = ("error",)
    date_hierarchy = "created_at"
    list_select_related = ("operator",)


@admin.register(AdapterCallCounter)
class AdapterCallCounterAdmin(PlatformAdmin):
    list_display = ("adapter_type", "operation", "outcome", "count", "latency_ms_sum")
    list_filter = ("adapter_type", "operation", "outcome")
    search_fields = ("adapter_type", "operation")


@admin.register(SimulatedConnectorState)
class SimulatedConnectorStateAdmin(PlatformAdmin):
    """What the CPMS simulator reports (set by tests and the demo through the service)."""

    list_display = ("cpms_station_id", "connector_id", "protocol", "raw_status", "updated_at")
    list_filter = ("protocol", "raw_status")
    search_fields = ("cpms_station_id",)
    date_hierarchy = "updated_at"
