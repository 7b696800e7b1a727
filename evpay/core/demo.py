"""Demo data for `make run` and `manage.py seed_demo`: idempotent, safe to run on every start."""

from dataclasses import dataclass

from django.db import transaction

from .models import Operator, User
from .services import api_key_create, operator_user_create


@dataclass
class DemoSeed:
    operator: Operator
    api_key: str


def demo_seed(*, name: str, admin_username: str, admin_password: str) -> DemoSeed:
    with transaction.atomic():
        operator, _ = Operator.objects.get_or_create(name=name)
        if not User.objects.filter(username=admin_username).exists():
            operator_user_create(operator=operator, username=admin_username, password=admin_password, role="admin")
        # Each app adds its demo data here as it lands (tariffs, stations, terminals, sessions, webhooks).
        from infrastructure.services import mapping_demo_seed

        mapping_demo_seed(operator=operator)
    _, raw_key = api_key_create(operator=operator, scopes=["*"], name="demo")
    return DemoSeed(operator=operator, api_key=raw_key)
