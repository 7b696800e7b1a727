from rest_framework import exceptions, permissions


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


def has_scope(scopes, required: str) -> bool:
    """`*` grants everything; `<resource>:write` implies `<resource>:read`."""
    if "*" in scopes or required in scopes:
        return True
    resource, _, action = required.partition(":")
    return action == "read" and f"{resource}:write" in scopes


class HasScope(permissions.BasePermission):
    """Views name their resource (`scope_resource = "payments"`); safe methods need `:read`, others `:write`.
    A view may pin one scope per action in `action_scopes`."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not getattr(user, "is_authenticated", False):
            raise exceptions.NotAuthenticated()
        resource = getattr(view, "scope_resource", None)
        if resource is None:
            return True
        required = getattr(view, "action_scopes", {}).get(getattr(view, "action", None))
        if required is None:
            required = f"{resource}:{'read' if request.method in permissions.SAFE_METHODS else 'write'}"
        if not has_scope(user.scopes, required):
            raise InsufficientScope(f"This credential lacks the scope {required}.")
        return True
