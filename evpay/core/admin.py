from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from evpay.admin import OperatorScopedAdmin

from .models import ApiKey, Operator, User


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("id", "name")
    date_hierarchy = "created_at"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "operator", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active", "operator")
    list_select_related = ("operator",)
    fieldsets = DjangoUserAdmin.fieldsets + (("Operator", {"fields": ("operator", "role")}),)


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorScopedAdmin):
    list_display = ("prefix", "name", "operator", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at")
    list_filter = ("operator",)
    search_fields = ("prefix", "name")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    readonly_fields = ("prefix", "key_hash", "last_used_at", "created_at", "operator")
    fields = ("operator", "name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at")
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False  # keys are made with `manage.py create_api_key`, which shows the secret once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from evpay.admin import run_service_action

        from .services import api_key_revoke

        run_service_action(self, request, queryset, lambda k: api_key_revoke(api_key=k), "Revoked")
