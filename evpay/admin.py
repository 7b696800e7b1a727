"""Admin base classes: operator staff see only their operator's objects; ledgers are never deleted;
state changes go through actions that call the services."""

from django.contrib import admin, messages

from evpay.core.errors import DomainError
from evpay.core.money import to_major_units


def money_text(minor: int | None, currency: str | None) -> str:
    """`7500` EUR -> "75.00 EUR": the admin shows money in major units with its currency, never bare minor units."""
    if minor is None:
        return "-"
    return f"{to_major_units(minor, currency)} {currency}" if currency else str(minor)


def terminal_serial(obj) -> str:
    """A terminal column as its serial number only (its page says the rest)."""
    return obj.terminal.serial_number if obj.terminal_id else "-"


def _money_display(field_name: str, currency_field: str, label: str):
    def display(self, obj):
        return money_text(getattr(obj, field_name), getattr(obj, currency_field))

    display.__name__ = f"{field_name}_money"
    return admin.display(description=label, ordering=field_name)(display)


def is_platform_admin(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class OperatorScopedAdmin(admin.ModelAdmin):
    """Superusers see everything. Operator staff (role admin or viewer) see their own operator's rows;
    only role admin may run actions."""

    operator_field = "operator"
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) per page load is wasted on large tables
    # Integer minor-unit fields, shown on lists and object pages as "75.00 EUR" (currency from `currency_field`).
    money_fields: tuple[str, ...] = ()
    money_labels: dict[str, str] = {}  # shorter column titles, e.g. {"amount_captured": "captured"}
    currency_field = "currency"
    # Model fields shown through a method of the admin on object pages (e.g. a card instead of its JSON).
    readable_fields: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls.money_fields:
            if not hasattr(cls, f"{name}_money"):
                label = cls.money_labels.get(name, name.replace("_", " "))
                setattr(cls, f"{name}_money", _money_display(name, cls.currency_field, label))

    def _shown_as(self, name):
        if isinstance(name, str) and name in self.money_fields:
            return f"{name}_money"
        return self.readable_fields.get(name, name) if isinstance(name, str) else name

    def get_list_display(self, request):
        columns = [self._shown_as(c) for c in super().get_list_display(request)]
        if not is_platform_admin(request):  # operator staff see one operator: the column says nothing
            columns = [c for c in columns if c != "operator"]
        # A currency column next to amounts that carry their currency repeats it.
        if self.money_fields and "currency" in columns and "currency" not in self.money_fields:
            columns = [c for c in columns if c != "currency"]
        return columns

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        return filters if is_platform_admin(request) else [f for f in filters if f != "operator"]

    def get_readonly_fields(self, request, obj=None):
        return [self._shown_as(name) for name in super().get_readonly_fields(request, obj)]

    def get_fields(self, request, obj=None):
        # A field shown through its readable twin is not shown raw as well (`amount` when `amount_money` is there).
        fields = super().get_fields(request, obj)
        return [f for f in fields if self._shown_as(f) == f or self._shown_as(f) not in fields]

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
        return [self._shown_as(f.name) for f in self.model._meta.fields]


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
