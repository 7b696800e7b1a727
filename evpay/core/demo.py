"""The ground's demo data for `manage.py seed_demo` (composed by `charging.demo`): the demo operator, its admin
user and an API key, through the public services."""

from .models import Operator, User
from .services import api_key_create, operator_user_create


def operator_demo_seed(*, name: str, admin_username: str, admin_password: str) -> Operator:
    """The operator (created or reused, by name) and its admin user (created when the username is free)."""
    operator, _ = Operator.objects.get_or_create(name=name)
    if not User.objects.filter(username=admin_username).exists():
        operator_user_create(operator=operator, username=admin_username, password=admin_password, role="admin")
    return operator


def api_key_demo_create(*, operator: Operator) -> str:
    """A new key with every scope, on every run (printed once by the command)."""
    _, raw_key = api_key_create(operator=operator, scopes=["*"], name="demo")
    return raw_key
