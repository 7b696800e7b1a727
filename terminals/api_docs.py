"""OpenAPI words and examples of the terminals API (merged by evpay.api.docs)."""

from evpay.api.docs import Doc, page

T = "/v1/terminals"

TERMINAL = {
    "id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
    "object": "terminal",
    "serial_number": "ING-SELF4000-000123",
    "vendor": "Ingenico",
    "model": "Self 4000",
    "firmware_version": "11.8.2",
    "station_id": "DE*EVP*S0001",
    "location": {
        "address": "Invalidenstraße 117",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
        "latitude": 52.5306,
        "longitude": 13.3847,
    },
    "capabilities": ["CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE"],
    "status": "online",
    "status_reason": "",
    "last_seen_at": "2026-11-23T10:00:00.000000Z",
    "health": {
        "last_event_type": "heartbeat",
        "last_error_code": None,
        "signal_strength_dbm": -67,
        "temperature_c": 31.5,
        "errors_24h": 0,
    },
    "metadata": {"site": "Berlin Mitte"},
    "created_at": "2026-11-20T08:00:00.000000Z",
    "updated_at": "2026-11-23T10:00:00.000000Z",
}
REGISTERED = {
    **TERMINAL,
    "status": "offline",
    "last_seen_at": None,
    "health": {
        "last_event_type": None,
        "last_error_code": None,
        "signal_strength_dbm": None,
        "temperature_c": None,
        "errors_24h": 0,
    },
    "updated_at": "2026-11-20T08:00:00.000000Z",
}

OPERATIONS = {
    f"GET {T}": Doc(
        summary="List terminals",
        description="Newest first, cursor-paginated. Filters: `status`, `vendor`, `model`, `station_id`, `q` "
        "(serial number contains), `last_seen_before`, `created_after`, `created_before`.",
        response=page(TERMINAL),
    ),
    f"POST {T}": Doc(
        summary="Register a terminal",
        description="Register a terminal (`terminal.registered`). It is `offline` until its first health event. A "
        "serial number the operator has registered already: 409 `terminal_exists`.",
        request={
            "serial_number": "ING-SELF4000-000123",
            "vendor": "Ingenico",
            "model": "Self 4000",
            "firmware_version": "11.8.2",
            "station_id": "DE*EVP*S0001",
            "location": TERMINAL["location"],
            "capabilities": ["CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE"],
            "metadata": {"site": "Berlin Mitte"},
        },
        response=REGISTERED,
    ),
    f"GET {T}/{{id}}": Doc(
        summary="Retrieve a terminal",
        description="The terminal with its status and health summary.",
        response=TERMINAL,
    ),
    f"POST {T}/{{id}}/health-events": Doc(
        summary="Record a health event",
        description="What the terminal reports: heartbeats, errors, warnings, recoveries, reboots, tampering. "
        "Sets `last_seen_at` to `occurred_at`. An offline terminal becomes online (except on `warning`, which "
        "changes no status); `error` and `tamper` make it faulted; `recovered` brings a faulted one online. "
        "Maintenance and decommissioned terminals keep their status. An event older than the newest one seen "
        "is stored but moves neither status nor health summary. Every status change emits "
        "`terminal.status_changed`. A terminal not heard from for TERMINAL_OFFLINE_AFTER (5 min) turns offline.",
        requests={
            "heartbeat": {
                "type": "heartbeat",
                "occurred_at": "2026-11-23T10:00:00Z",
                "metrics": {"signal_strength_dbm": -67, "temperature_c": 31.5, "uptime_s": 86400},
            },
            "error": {
                "type": "error",
                "occurred_at": "2026-11-23T10:05:00Z",
                "code": "CARD_READER_FAILURE",
                "message": "Contactless reader does not respond",
            },
        },
        response={
            "id": "the_EHkEY9vwTVqzDfkb3nyopku9",
            "object": "terminal_health_event",
            "terminal_id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
            "type": "heartbeat",
            "occurred_at": "2026-11-23T10:00:00.000000Z",
            "code": None,
            "message": None,
            "metrics": {"signal_strength_dbm": -67, "temperature_c": 31.5, "uptime_s": 86400},
            "created_at": "2026-11-23T10:00:00.210000Z",
        },
    ),
    f"PUT {T}/{{id}}/status": Doc(
        summary="Set a terminal's status",
        description="Operator-set statuses: `online`, `offline`, `maintenance`, `decommissioned` (final). Setting "
        "the current status, or any status of a decommissioned terminal, is 409 `invalid_state`. Emits "
        "`terminal.status_changed` with `previous_status`.",
        request={"status": "maintenance", "reason": "Card reader replacement scheduled"},
        response={**TERMINAL, "status": "maintenance", "status_reason": "Card reader replacement scheduled"},
    ),
    f"GET {T}/stats": Doc(
        summary="Fleet statistics",
        description="Counts by status, vendor and model, the online ratio, online terminals that went silent, "
        "and the last 24 hours of health events by type; a constant number of queries whatever the fleet size.",
        response={
            "total": 5,
            "by_status": {"online": 4, "offline": 0, "faulted": 0, "maintenance": 1, "decommissioned": 0},
            "by_vendor": {"CCV": 1, "Ingenico": 1, "Nayax": 1, "Payter": 1, "Worldline": 1},
            "by_model": {"Apollo": 1, "Self 4000": 1, "Smart-Vending": 1, "Valina": 1, "VPOS Touch": 1},
            "online_ratio": 0.8,
            "stale": 0,
            "health_events_24h": {
                "heartbeat": 1440,
                "error": 0,
                "warning": 1,
                "recovered": 0,
                "reboot": 5,
                "tamper": 0,
            },
        },
    ),
}

FIELDS = {
    "Terminal": {
        "object": 'Always `"terminal"`.',
        "serial_number": "Unique per operator.",
        "station_id": "The charging station the terminal serves, if any.",
        "capabilities": "What the terminal can do (OCPI terminal capabilities).",
        "status": "`online`, `offline` (not heard from), `faulted` (error or tamper), `maintenance`, "
        "`decommissioned` (final).",
        "status_reason": "Why the operator set the status (free text).",
        "last_seen_at": "`occurred_at` of the newest health event.",
        "health": "Summary of the health events: last type, last error code, signal, temperature, errors in 24 h.",
    },
    "TerminalCreate": {
        "serial_number": "Unique per operator (409 `terminal_exists`).",
        "capabilities": "Subset of CHIP_CARD_SUPPORT, CONTACTLESS_CARD_SUPPORT, CREDIT_CARD_PAYABLE, "
        "DEBIT_CARD_PAYABLE, PED_TERMINAL.",
    },
    "Location": {
        "country": "ISO 3166-1 alpha-2 (`DE`).",
        "latitude": "WGS 84 degrees, -90 to 90.",
        "longitude": "WGS 84 degrees, -180 to 180.",
    },
    "TerminalHealthEvent": {
        "object": 'Always `"terminal_health_event"`.',
        "type": "`heartbeat`, `error`, `warning`, `recovered`, `reboot` or `tamper`.",
        "code": "The terminal's own error or warning code.",
    },
    "TerminalHealthEventCreate": {
        "type": "`heartbeat`, `error`, `warning`, `recovered`, `reboot` or `tamper`.",
        "code": "The terminal's own error or warning code (`PAPER_LOW`).",
        "message": "Human-readable detail.",
    },
    "HealthSummary": {
        "last_event_type": "Type of the newest health event.",
        "last_error_code": "`code` of the newest error or tamper event.",
        "signal_strength_dbm": "From the newest event's metrics.",
        "temperature_c": "From the newest event's metrics.",
    },
    "HealthMetrics": {
        "signal_strength_dbm": "Mobile signal strength in dBm (e.g. -67).",
        "temperature_c": "Device temperature in °C.",
        "uptime_s": "Seconds since the terminal booted.",
    },
    "TerminalStatusSet": {"reason": "Why (free text, shown as `status_reason`)."},
}
