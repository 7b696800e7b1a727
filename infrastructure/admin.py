from django import forms
from django.contrib import admin

from evpay.admin import OperatorScopedAdmin, is_platform_admin, run_service_action

from . import services
from .adapters.registry import adapter_requires_base_url, adapter_types
from .models import AdapterConfig, Connector, StationMapping

_CONNECTIVITY_FIELDS = ("connectivity_test_status", "connectivity_test_latency_ms", "connectivity_test_error",
                        "connectivity_tested_at")


class ConnectorInline(admin.TabularInline):
    model = Connector
    fields = ("connector_id", "evse_uid", "standard", "power_type", "max_power_kw", "status", "status_updated_at")
    readonly_fields = ("status", "status_updated_at")  # statuses come from the CPMS
    extra = 0

    def has_delete_permission(self, request, obj=None):
        return False  # removing a connector goes through the API (it checks for a running session)


class StationMappingForm(forms.ModelForm):
    adapter_type = forms.ChoiceField(choices=lambda: [(name, name) for name in adapter_types()])

    class Meta:
        model = StationMapping
        fields = ("operator", "station_id", "adapter_type", "cpms_station_id", "tariff", "is_active", "metadata")


@admin.register(StationMapping)
class StationMappingAdmin(OperatorScopedAdmin):
    form = StationMappingForm
    inlines = (ConnectorInline,)
    list_display = ("id", "station_id", "operator", "adapter_type", "cpms_station_id", "is_active",
                    "connectivity_test_status", "connectivity_tested_at", "created_at")
    list_filter = ("adapter_type", "is_active", "connectivity_test_status")
    search_fields = ("id", "station_id", "cpms_station_id")
    list_select_related = ("operator",)
    readonly_fields = (*_CONNECTIVITY_FIELDS, "created_at", "updated_at")
    actions = ("test_connectivity", "delete_mappings")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_exclude(self, request, obj=None):
        return () if is_platform_admin(request) else ("operator",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tariff" and not is_platform_admin(request):
            kwargs["queryset"] = db_field.remote_field.model.objects.filter(operator_id=request.user.operator_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change and not is_platform_admin(request):
            obj.operator_id = request.user.operator_id
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for connector in formset.save(commit=False):
            connector.operator_id = form.instance.operator_id
            connector.save()
        formset.save_m2m()

    def has_delete_permission(self, request, obj=None):
        return False  # the "Delete" action soft-deletes and refuses mappings in use

    @admin.action(description="Test connectivity")
    def test_connectivity(self, request, queryset):
        run_service_action(self, request, queryset,
                           lambda m: services.mapping_connectivity_test_request(mapping=m), "Connectivity test queued")

    @admin.action(description="Delete (refused while a charge session runs)")
    def delete_mappings(self, request, queryset):
        run_service_action(self, request, queryset, lambda m: services.mapping_delete(mapping=m), "Deleted")


@admin.register(Connector)
class ConnectorAdmin(OperatorScopedAdmin):
    """Connector statuses as the CPMS reported them: read-only."""

    list_display = ("mapping", "connector_id", "evse_uid", "status", "status_updated_at", "standard", "power_type",
                    "max_power_kw")
    list_filter = ("status", "power_type", "mapping__adapter_type")
    search_fields = ("mapping__station_id", "connector_id", "evse_uid")
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
        required=False, label="Credentials token", widget=forms.PasswordInput(render_value=False),
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
    list_display = ("adapter_type", "operator", "enabled", "health_status", "circuit_state", "consecutive_failures",
                    "last_success_at", "last_failure_at", "last_polled_at")
    list_filter = ("adapter_type", "enabled", "circuit_state", "health_status")
    list_select_related = ("operator",)
    readonly_fields = ("operator", "adapter_type", "credentials_set", "circuit_state", "consecutive_failures",
                       "circuit_opened_at", "last_success_at", "last_failure_at", "last_polled_at", "health_status",
                       "updated_at")

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
            operator=obj.operator, adapter_type=obj.adapter_type, enabled=data["enabled"], base_url=data["base_url"],
            timeout_ms=data["timeout_ms"], max_retries=data["max_retries"], poll_interval_s=data["poll_interval_s"],
            credentials=credentials,
        )
