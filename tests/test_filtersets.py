"""Every list filter set against its model (tests.base.FilterSetTests): each field is filtered or says why not."""

from charging.filters import ChargeSessionFilterSet
from infrastructure.filters import ConnectorFilterSet, StationMappingFilterSet
from payments.filters import PaymentIntentFilterSet, RefundFilterSet
from terminals.filters import TerminalFilterSet
from tests.base import FilterSetTests
from webhooks.filters import EventFilterSet, WebhookDeliveryFilterSet, WebhookSubscriptionFilterSet

MONEY = "an amount of one object, not a search key"
TIMESTAMP = "a moment in the object's life, shown on it; lists filter by creation time"
PROCESSOR = "the processor's bookkeeping, shown on the object"
PRICE = "a price copied from the tariff at start, shown on the session"
INTERNAL = "internal bookkeeping, not part of the API"
SECRET = "a secret: never a query key"


class TestPaymentIntentFilterSet(FilterSetTests):
    filterset = PaymentIntentFilterSet
    unfiltered = {
        **dict.fromkeys(
            [
                "amount",
                "amount_authorized",
                "amount_capturable",
                "amount_captured",
                "amount_refunded",
                "amount_refund_pending",
            ],
            MONEY,
        ),
        **dict.fromkeys(["capture_before", "authorized_at", "captured_at", "voided_at", "expired_at"], TIMESTAMP),
        **dict.fromkeys(
            ["payment_method", "processor", "processor_reference", "authorization_code", "last_payment_error"],
            PROCESSOR,
        ),
        "void_reason": "follows from the status; shown on the intent",
        "description": "free text for people",
        **dict.fromkeys(["processing_action", "processing_started_at", "authorization_attempts"], INTERNAL),
    }


class TestRefundFilterSet(FilterSetTests):
    filterset = RefundFilterSet
    unfiltered = {
        "amount": MONEY,
        "currency": "follows from the payment intent (filter those by currency)",
        "reason": "the client's stated reason, shown on the refund",
        "failure_reason": PROCESSOR,
        "processor_reference": PROCESSOR,
        **dict.fromkeys(["attempted_at", "attempts"], INTERNAL),
    }


class TestChargeSessionFilterSet(FilterSetTests):
    filterset = ChargeSessionFilterSet
    unfiltered = {
        "mapping": "sessions are found by station_id, which the session keeps",
        "connector_id": "a connector's sessions are found by station_id; the connector shows its running one",
        "currency": "follows from the payment intent",
        "tariff": "prices are copied at start; the tariff may change or go",
        **dict.fromkeys(["price_per_kwh", "price_per_minute", "session_fee", "vat_rate_percent"], PRICE),
        **dict.fromkeys(
            [
                "preauth_amount",
                "cost_energy",
                "cost_time",
                "cost_session_fee",
                "cost_subtotal",
                "cost_vat",
                "cost_total",
                "amount_captured",
            ],
            MONEY,
        ),
        **dict.fromkeys(["energy_wh", "duration_seconds", "power_kw"], "a reading of the session, shown on it"),
        **dict.fromkeys(["last_progress_at", "started_at", "completed_at"], TIMESTAMP),
        "stop_reason": "follows from the status; shown on the session",
        "cpms_session_id": "the CPMS's id, shown on the session",
    }


class TestTerminalFilterSet(FilterSetTests):
    filterset = TerminalFilterSet
    unfiltered = {
        "firmware_version": "shown on the terminal; `q` searches the fleet",
        "location": "a structured address, shown on the terminal",
        "capabilities": "a list, shown on the terminal",
        "status_reason": "free text explaining the status",
        **dict.fromkeys(
            [
                "health_last_event_type",
                "health_last_error_code",
                "health_signal_strength_dbm",
                "health_temperature_c",
                "health_errors_24h",
            ],
            "the health summary, shown on the terminal and in GET /v1/terminals/stats",
        ),
    }


class TestStationMappingFilterSet(FilterSetTests):
    filterset = StationMappingFilterSet
    unfiltered = {
        "cpms_station_id": "the CPMS's id, shown on the mapping; mappings are found by station_id",
        **dict.fromkeys(
            [
                "connectivity_test_status",
                "connectivity_test_latency_ms",
                "connectivity_test_error",
                "connectivity_tested_at",
            ],
            "the last connectivity test, shown on the mapping",
        ),
        "deleted_at": "deleted mappings are never listed",
    }


class TestConnectorFilterSet(FilterSetTests):
    filterset = ConnectorFilterSet
    unfiltered = {
        "connector_id": "unique within a station only: filter by station_id",
        "evse_uid": "the CPMS's id, shown on the connector",
        **dict.fromkeys(["standard", "power_type", "max_power_kw"], "the connector's specification, shown on it"),
        "status_updated_at": TIMESTAMP,
    }


class TestWebhookSubscriptionFilterSet(FilterSetTests):
    filterset = WebhookSubscriptionFilterSet
    unfiltered = {
        "url": "shown on the subscription; an operator has few",
        "description": "free text for people",
        "event_types": "filtered by `event_type` (a subscription to `*` matches every type)",
        "disabled_reason": "follows from is_active; shown on the subscription",
        **dict.fromkeys(["secret", "previous_secret"], SECRET),
        **dict.fromkeys(["previous_secret_expires_at", "failing_since"], TIMESTAMP),
    }


class TestWebhookDeliveryFilterSet(FilterSetTests):
    filterset = WebhookDeliveryFilterSet
    unfiltered = {
        "subscription": "deliveries are listed under their subscription (/webhooks/{id}/deliveries)",
        "event": "an event's deliveries are shown with the event",
        "payload": INTERNAL,
        **dict.fromkeys(["attempt_count", "last_response_status", "last_error"], "the last attempt, shown on it"),
        **dict.fromkeys(["next_attempt_at", "enqueued_at", "attempt_started_at", "last_attempt_at"], TIMESTAMP),
    }


class TestEventFilterSet(FilterSetTests):
    filterset = EventFilterSet
    unfiltered = {"data": "the payload; events are found by type and object_id"}
