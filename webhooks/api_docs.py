"""OpenAPI words and examples of webhook subscriptions and the events API (merged by evpay.api.docs)."""

from evpay.api.docs import Doc, page

W = "/api/v1/webhooks"
E = "/v1/events"

SUBSCRIPTION = {
    "id": "whs_JmRAv90n6FlYlMZm6X29xyY5",
    "url": "https://erp.example.com/evpay/webhooks",
    "description": "ERP: captured payments and completed sessions",
    "event_types": ["payment_intent.captured", "charge.completed"],
    "is_active": True,
    "disabled_reason": None,
    "secret_hint": "whsec_GP",
    "created_at": "2026-11-23T09:00:00.000000Z",
    "updated_at": "2026-11-23T09:00:00.000000Z",
}
WITH_SECRET = {**SUBSCRIPTION, "secret": "whsec_GPq0yYQ8i2m1X0m3nS0yq8xE8Uu3bq1Jm7n0w6V7l2c="}
DELIVERY = {
    "id": "whd_B4uC6CYBbZDR9LRQV35nXp4O",
    "subscription_id": "whs_JmRAv90n6FlYlMZm6X29xyY5",
    "event_id": "evt_y6rYQiOZRQh4JnpGOSVTLDrj",
    "event_type": "payment_intent.captured",
    "status": "succeeded",
    "attempt_count": 2,
    "next_attempt_at": None,
    "last_attempt_at": "2026-11-23T10:41:06.300000Z",
    "last_response_status": 200,
    "last_error": None,
    "attempts": [
        {"number": 1, "at": "2026-11-23T10:41:00.200000Z", "response_status": 503, "duration_ms": 41, "error": None},
        {"number": 2, "at": "2026-11-23T10:41:06.300000Z", "response_status": 200, "duration_ms": 38, "error": None},
    ],
    "created_at": "2026-11-23T10:41:00.100000Z",
}
QUEUED = {
    **DELIVERY,
    "id": "whd_Q9m2Yc4sVtL0pNwE7rHk1dXa",
    "status": "pending",
    "attempt_count": 0,
    "next_attempt_at": "2026-11-24T08:00:00.000000Z",
    "last_attempt_at": None,
    "last_response_status": None,
    "attempts": [],
    "created_at": "2026-11-24T08:00:00.000000Z",
}
EVENT = {
    "id": "evt_y6rYQiOZRQh4JnpGOSVTLDrj",
    "object": "event",
    "type": "payment_intent.captured",
    "created_at": "2026-11-23T10:41:00.000000Z",
    "data": {
        "object": {
            "id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
            "object": "payment_intent",
            "amount": 5000,
            "currency": "EUR",
            "status": "captured",
            "amount_captured": 4200,
            "...": "the rest of the payment intent, as GET /v1/payment-intents/{id} returned it then",
        }
    },
}

OPERATIONS = {
    f"GET {W}": Doc(
        summary="List webhook subscriptions",
        description="Newest first, cursor-paginated. Filters: `is_active`, `event_type` (subscriptions that "
        'receive it, directly or through `"*"`). The secret is never shown here, only `secret_hint`.',
        response=page(SUBSCRIPTION),
    ),
    f"POST {W}": Doc(
        summary="Create a webhook subscription",
        description='Subscribes a URL to event types (`["*"]`: all). The response is the only one that shows '
        "the signing `secret`: store it to verify deliveries (see *Webhooks* in the guide above). An unknown event "
        "type is 400. The URL must be `https` unless the server sets WEBHOOK_ALLOW_HTTP=1, and a host that is or "
        "resolves to a loopback, private, link-local, CGNAT, multicast or unspecified address is 400 "
        "`url_not_allowed` unless it lies in WEBHOOK_ALLOWED_NETWORKS (e.g. `127.0.0.0/8` for a receiver on the "
        "same machine). `manage.py webhooks_listen` runs such a local receiver for you.",
        request={
            "url": "https://erp.example.com/evpay/webhooks",
            "event_types": ["payment_intent.captured", "charge.completed"],
            "description": "ERP: captured payments and completed sessions",
        },
        response=WITH_SECRET,
    ),
    f"GET {W}/{{id}}": Doc(
        summary="Retrieve a webhook subscription", description="One subscription.", response=SUBSCRIPTION
    ),
    f"PUT {W}/{{id}}": Doc(
        summary="Update a webhook subscription",
        description="Replaces `url` and `event_types`; `is_active: true` re-enables a disabled subscription. "
        "`rotate_secret: true` makes a new secret, returned once in this response; the old one keeps signing "
        "alongside it for 24 h (two signatures in `webhook-signature`), so receivers can switch without a gap.",
        request={
            "url": "https://erp.example.com/evpay/webhooks",
            "event_types": ["*"],
            "is_active": True,
            "rotate_secret": True,
        },
        response={**WITH_SECRET, "event_types": ["*"], "updated_at": "2026-11-24T08:00:00.000000Z"},
    ),
    f"DELETE {W}/{{id}}": Doc(
        summary="Deactivate a webhook subscription",
        description="`is_active` becomes false (`disabled_reason: deactivated`) and no new deliveries are made; the "
        "subscription and its deliveries stay readable. PUT `is_active: true` re-enables it.",
    ),
    f"GET {W}/{{id}}/deliveries": Doc(
        summary="List a subscription's deliveries",
        description="Each event sent to this subscription, with every attempt (status, duration, error). Filters: "
        "`status`, `event_type`, `created_after`, `created_before`. Response bodies are not shown.",
        response=page(DELIVERY),
    ),
    f"POST {W}/{{id}}/test": Doc(
        summary="Send a test event",
        description="Delivers a `webhook.test` event (its `data.object` is the subscription) to this subscription "
        "only: 202 with the queued delivery. An inactive subscription: 409 `invalid_state`.",
        response={**QUEUED, "event_type": "webhook.test", "next_attempt_at": "2026-11-24T08:00:00.000000Z"},
    ),
    f"GET {E}": Doc(
        summary="List events",
        description="Every event of the operator for EVENT_RETENTION_DAYS (at least 30 days), newest first, "
        "cursor-paginated: reconcile what a receiver missed. Filters: `type` (exact, or a prefix ending in `*` "
        "such as `charge.*`), `object_id` (the id of `data.object`: every event of one payment intent or "
        "session), `created_after`, `created_before`.",
        response=page(EVENT),
    ),
    f"GET {E}/{{id}}": Doc(
        summary="Retrieve an event",
        description="The event object; its `id`, `type` and `data` are exactly those its deliveries send (the "
        "delivery body's `timestamp` is `created_at`).",
        response=EVENT,
    ),
    f"POST {E}/{{id}}/redeliver": Doc(
        summary="Redeliver an event",
        description="A new delivery of the same event (same body, same `webhook-id`, so receivers that have it "
        "already can drop it) to `subscription_id`, which must be active, or without it to every active "
        "subscription whose `event_types` match the event now (a `webhook.test` event: the subscriptions it was "
        "sent to). 202 with the queued deliveries; none to send to, or an inactive subscription: 409 "
        "`invalid_state`; an unknown `subscription_id`: 400.",
        requests={"to every matching subscription": {}, "to one subscription": {"subscription_id": SUBSCRIPTION["id"]}},
        response={"deliveries": [{**QUEUED, "event_id": EVENT["id"]}]},
    ),
}

FIELDS = {
    "WebhookSubscription": {
        "url": "Where deliveries are POSTed: `https`, public (see WEBHOOK_ALLOW_HTTP / WEBHOOK_ALLOWED_NETWORKS).",
        "description": "Free text.",
        "event_types": 'Event types delivered, or `["*"]` for all.',
        "is_active": "False once deactivated or disabled; no new deliveries are made then.",
        "disabled_reason": "`deactivated` (DELETE or PUT), `too_many_failures` (failing for "
        "WEBHOOK_DISABLE_AFTER, 5 days) or `endpoint_gone` (the receiver answered 410).",
    },
    "WebhookSubscriptionCreate": {
        "url": "`https` and public, unless the server allows otherwise (WEBHOOK_ALLOW_HTTP, WEBHOOK_ALLOWED_NETWORKS).",
        "description": "Free text, at most 500 characters.",
    },
    "WebhookSubscriptionUpdate": {"url": "As on create.", "description": "Free text, at most 500 characters."},
    "WebhookDelivery": {
        "event_id": "The event (`evt_...`), sent as the `webhook-id` header on every attempt.",
        "status": "`pending` (waiting for an attempt or a retry), `succeeded` (a 2xx), `failed` (retries "
        "exhausted, or the subscription was disabled).",
        "attempt_count": "Attempts made so far.",
        "next_attempt_at": "When the next attempt is due; null once succeeded or failed.",
        "last_response_status": "HTTP status of the last attempt; null when it got no answer.",
        "last_error": "Why the last attempt failed without an HTTP status (timeout, connection refused, "
        "redirect, address not allowed).",
        "attempts": "Every attempt, oldest first.",
    },
    "WebhookDeliveryAttempt": {
        "number": "1 for the first attempt.",
        "response_status": "HTTP status, or null without an answer.",
        "duration_ms": "Time to the answer (or the failure).",
        "error": "Timeout, connection error or redirect; null when an HTTP status came back.",
    },
    "Event": {
        "id": "`evt_...`; the `webhook-id` of its deliveries.",
        "type": "What happened: `payment_intent.captured`, `charge.completed`, `terminal.status_changed`, ...",
        "created_at": "When it happened (the `timestamp` of the delivery body).",
    },
    "EventRedeliveries": {"deliveries": "The deliveries queued, one per subscription."},
}
