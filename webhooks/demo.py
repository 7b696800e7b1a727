"""The webhooks app's demo data for `manage.py seed_demo` (composed by `charging.demo`), through the public
services."""

from evpay.core.models import Operator

from .models import ALL_EVENT_TYPES, WebhookSubscription
from .services import webhook_subscription_create

DEMO_WEBHOOK_URL = "https://example.com/evpay-webhooks"


def webhook_subscription_demo_seed(*, operator: Operator) -> WebhookSubscription:
    """The demo operator's subscription to every event (idempotent, by URL). Made without the DNS check of
    `webhook_subscription_create` so that seeding works offline; each delivery still resolves and checks the
    address before it connects."""
    existing = WebhookSubscription.objects.filter(operator=operator, url=DEMO_WEBHOOK_URL).first()
    return existing or webhook_subscription_create(
        operator=operator,
        url=DEMO_WEBHOOK_URL,
        event_types=[ALL_EVENT_TYPES],
        description="Demo endpoint: point it at your own receiver",
        resolve_now=False,
    )
