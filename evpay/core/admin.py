from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from evpay.admin import LedgerAdmin, OperatorScopedAdmin, run_service_action

from .models import ApiKey, IdempotencyKey, Operator, User
from .services import api_key_revoke


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    """Platform staff only (operator staff have no Django permissions on it)."""

    list_display = ("id", "name", "created_at")
    list_filter = ("created_at",)
    search_fields = ("id", "name")
    date_hierarchy = "created_at"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Platform staff only; operator users are made with `manage.py create_operator_user`."""

    list_display = ("username", "operator", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active", "operator")
    list_select_related = ("operator",)
    date_hierarchy = "date_joined"
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Operator", {"fields": ("operator", "role")}))


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorScopedAdmin):
    list_display = ("prefix", "name", "operator", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at")
    # Only operators with rows in the (scoped) list: a plain filter would name every operator.
    list_filter = (("operator", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("prefix", "name")
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    # The name is a label; what a key may do and whether it works is fixed at creation or by the revoke action.
    readonly_fields = (
        "prefix",
        "key_hash",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
        "operator",
    )
    fields = ("operator", "name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at")
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False  # keys are made with `manage.py create_api_key`, which shows the secret once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        run_service_action(self, request, queryset, lambda k: api_key_revoke(api_key=k), "Revoked")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(LedgerAdmin):
    """Stored POST responses for replay: read-only, pruned by age."""

    list_display = ("key", "operator", "response_status", "created_at", "completed_at")
    list_filter = ("response_status",)
    search_fields = ("key",)
    date_hierarchy = "created_at"
    list_select_related = ("operator",)
    actions = None
