"""The payload of the webhooks app's own event (`webhook.test`): the subscription as the API shows it."""

from typing import Any

from .models import WebhookSubscription
from .serializers import WebhookSubscriptionSerializer


def webhook_subscription_payload(subscription: WebhookSubscription) -> dict[str, Any]:
    return dict(WebhookSubscriptionSerializer(subscription).data)
