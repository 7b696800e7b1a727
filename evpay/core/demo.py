"""Demo data for `make run` and `manage.py seed_demo`: idempotent, safe to run on every start.

Everything is made through the apps' services (with their events). The CPMS's answers to the demo sessions are
recorded directly, so the data is complete without a running worker."""

from dataclasses import dataclass

from django.db import transaction

from .models import Operator, User
from .services import api_key_create, operator_user_create


@dataclass
class DemoSeed:
    operator: Operator
    api_key: str


def demo_seed(*, name: str, admin_username: str, admin_password: str) -> DemoSeed:
    from charging.services import charge_session_demo_seed, tariff_demo_seed
    from infrastructure.models import StationMapping
    from infrastructure.selectors import station_tariff_ids
    from infrastructure.services import DEMO_STATIONS, mapping_demo_seed, mapping_update
    from terminals.services import terminal_demo_seed
    from webhooks.services import webhook_subscription_demo_seed

    with transaction.atomic():
        operator, _ = Operator.objects.get_or_create(name=name)
        if not User.objects.filter(username=admin_username).exists():
            operator_user_create(operator=operator, username=admin_username, password=admin_password, role="admin")
        _, fast_tariff = tariff_demo_seed(operator=operator)
        mapping_demo_seed(operator=operator)
        fast_station = StationMapping.objects.live().get(operator=operator, station_id=DEMO_STATIONS[1][0])
        if not station_tariff_ids(mapping_ids=[fast_station.pk]):
            mapping_update(mapping=fast_station, tariff_id=fast_tariff.pk)
        terminals = terminal_demo_seed(operator=operator)
    # Outside the transaction above: payment intents call the processor, which must not run under a lock.
    charge_session_demo_seed(operator=operator, terminals=terminals)
    # Last, so that the demo's own events are not queued for delivery to the demo endpoint.
    webhook_subscription_demo_seed(operator=operator)
    _, raw_key = api_key_create(operator=operator, scopes=["*"], name="demo")
    return DemoSeed(operator=operator, api_key=raw_key)
