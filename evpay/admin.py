"""Admin base classes: operator staff see only their operator's objects; ledgers are never deleted;
state changes go through actions that call the services."""

from django.contrib import admin, messages

from evpay.core.errors import DomainError


def is_platform_admin(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class OperatorScopedAdmin(admin.ModelAdmin):
    """Superusers see everything. Operator staff (role admin or viewer) see their own operator's rows;
    only role admin may run actions."""

    operator_field = "operator"
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) per page load is wasted on large tables

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_platform_admin(request):
            return queryset
        operator_id = getattr(request.user, "operator_id", None)
        if operator_id is None:
            return queryset.none()
        return queryset.filter(
            **{f"{self.operator_field}_id" if "__" not in self.operator_field else self.operator_field: operator_id}
        )

    def _is_operator_staff(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_staff and getattr(request.user, "operator_id", None))

    def has_module_permission(self, request):
        return is_platform_admin(request) or bool(self._is_operator_staff(request))

    def has_view_permission(self, request, obj=None):
        return is_platform_admin(request) or bool(self._is_operator_staff(request))

    def has_change_permission(self, request, obj=None):
        return is_platform_admin(request) or (bool(self._is_operator_staff(request)) and request.user.role == "admin")

    def has_add_permission(self, request):
        return self.has_change_permission(request)

    def get_actions(self, request):
        # Actions change state: viewers get none.
        if not self.has_change_permission(request):
            return {}
        return super().get_actions(request)


def scoped_values_filter(field_path: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on a field reached through a relation, offering only the values in the admin's (scoped)
    queryset: Django's own filter for such a path lists the values of every operator."""

    class ScopedValuesFilter(admin.SimpleListFilter):
        parameter_name = field_path

        def lookups(self, request, model_admin):
            values = (
                model_admin.get_queryset(request).order_by(field_path).values_list(field_path, flat=True).distinct()
            )
            return [(value, value) for value in values]

        def queryset(self, request, queryset):
            return queryset.filter(**{field_path: self.value()}) if self.value() else queryset

    ScopedValuesFilter.title = title
    return ScopedValuesFilter


class LedgerAdmin(OperatorScopedAdmin):
    """Money and event records: read-only in the admin, never deleted; actions call services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # An object's page is view-only (no Save button, nothing to post); "change" on the list is what the
        # actions need.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class OperatorScopedInline(admin.TabularInline):
    """An inline on an operator-scoped admin: shown to whoever may see the page around it (which is already cut
    to the operator's objects), changed by whoever may change that page, never deleted row by row."""

    extra = 0

    def _parent_admin(self):
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request, obj=None):
        return self._parent_admin().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class PlatformAdmin(admin.ModelAdmin):
    """Platform-wide records without an operator (simulator state, call totals): superusers only, read-only."""

    list_per_page = 50
    show_full_result_count = False

    def has_module_permission(self, request):
        return is_platform_admin(request)

    def has_view_permission(self, request, obj=None):
        return is_platform_admin(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def run_service_action(modeladmin, request, queryset, service, success: str, **kwargs) -> None:
    """Call `service(instance)` for each selected row; report successes and domain errors per row."""
    done, failed = 0, []
    for instance in queryset:
        try:
            service(instance, **kwargs)
            done += 1
        except DomainError as exc:
            failed.append(f"{instance.pk}: {exc.detail}")
    if done:
        modeladmin.message_user(request, f"{success}: {done}.", messages.SUCCESS)
    for failure in failed:
        modeladmin.message_user(request, failure, messages.ERROR)
