"""OpenAPI words and examples of tariffs and charge sessions (merged by evpay.api.docs)."""

from evpay.api.docs import Doc, page

TARIFF = {
    "id": "trf_EARgf5ScGQxtApEAV4A4HQqE",
    "name": "Standard AC/DC",
    "currency": "EUR",
    "price_per_kwh": "0.4958",
    "price_per_minute": "0.042",
    "session_fee": "0.00",
    "vat_rate_percent": "19.00",
    "preauthorize_amount": 5000,
    "is_default": True,
    "created_at": "2026-11-23T09:00:00.000000Z",
    "updated_at": "2026-11-23T09:00:00.000000Z",
}
TARIFF_PRICES = {
    "price_per_kwh": "0.4958",
    "price_per_minute": "0.042",
    "session_fee": "0.00",
    "vat_rate_percent": "19.00",
}
PENDING = {
    "id": "chs_upFY4TsdlOkcTjiiavDExBDK",
    "object": "charge_session",
    "status": "pending",
    "terminal_id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
    "station_id": "DE*EVP*S0001",
    "connector_id": "2",
    "mapping_id": "map_XeN8cbUbW8IFM2FiHi9iIoef",
    "payment_intent_id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
    "currency": "EUR",
    "preauth_amount": 5000,
    "tariff": TARIFF_PRICES,
    "energy_wh": 0,
    "duration_seconds": 0,
    "power_kw": None,
    "last_progress_at": None,
    "cost": {"energy": 0, "time": 0, "session_fee": 0, "subtotal": 0, "vat": 0, "total": 0},
    "amount_captured": 0,
    "amount_refunded": 0,
    "stop_reason": None,
    "cpms_session_id": None,
    "started_at": None,
    "completed_at": None,
    "created_at": "2026-11-23T10:00:10.000000Z",
    "updated_at": "2026-11-23T10:00:10.000000Z",
    "metadata": {"bay": "4"},
}
CHARGING = {
    **PENDING,
    "status": "charging",
    "energy_wh": 12000,
    "duration_seconds": 1500,
    "power_kw": 28.8,
    "last_progress_at": "2026-11-23T10:25:11.000000Z",
    # 12 kWh x 0.4958 = 5.9496; 25 min x 0.042 = 1.05; subtotal 7.00, VAT 19 % 1.33
    "cost": {"energy": 595, "time": 105, "session_fee": 0, "subtotal": 700, "vat": 133, "total": 833},
    "cpms_session_id": "SIM-chs_upFY4TsdlOkcTjiiavDExBDK",
    "started_at": "2026-11-23T10:00:11.000000Z",
    "updated_at": "2026-11-23T10:25:11.000000Z",
}
COMPLETED = {
    **CHARGING,
    "status": "completed",
    "energy_wh": 18500,
    "duration_seconds": 2400,
    "power_kw": None,
    "last_progress_at": "2026-11-23T10:40:11.000000Z",
    # 18.5 kWh x 0.4958 = 9.1723; 40 min x 0.042 = 1.68; subtotal 10.85, VAT 2.06
    "cost": {"energy": 917, "time": 168, "session_fee": 0, "subtotal": 1085, "vat": 206, "total": 1291},
    "amount_captured": 1291,
    "stop_reason": "completed",
    "completed_at": "2026-11-23T10:40:11.000000Z",
    "updated_at": "2026-11-23T10:40:12.000000Z",
}

OPERATIONS = {
    "GET /v1/tariffs": Doc(
        summary="List tariffs",
        description="Newest first, cursor-paginated. One tariff per operator is the default; a station mapping "
        "may name its own (`tariff_id`).",
        response=page(TARIFF),
    ),
    "POST /v1/tariffs": Doc(
        summary="Create a tariff",
        description="Prices are decimal strings in major units excluding VAT, `>= 0`, at most 4 decimals (JSON "
        "numbers are refused: no floats near money); `preauthorize_amount` is in minor units. `is_default: true` "
        "makes it the operator's default (the previous default stops being one, in the same transaction).",
        request={
            "name": "Standard AC/DC",
            "currency": "EUR",
            "price_per_kwh": "0.4958",
            "price_per_minute": "0.042",
            "session_fee": "0.00",
            "vat_rate_percent": "19.00",
            "preauthorize_amount": 5000,
            "is_default": True,
        },
        response=TARIFF,
    ),
    "GET /v1/tariffs/{id}": Doc(summary="Retrieve a tariff", description="One tariff.", response=TARIFF),
    "PATCH /v1/tariffs/{id}": Doc(
        summary="Update a tariff",
        description="Changes the given fields. Running sessions keep the prices they copied when they started.",
        request={"price_per_kwh": "0.5200", "is_default": True},
        response={**TARIFF, "price_per_kwh": "0.52", "updated_at": "2026-11-24T08:00:00.000000Z"},
    ),
    "GET /v1/adhoc-charges": Doc(
        summary="List charge sessions",
        description="Newest first, cursor-paginated. Filters: `status`, `terminal_id`, `station_id`, "
        "`payment_intent_id`, `created_after`, `created_before`.",
        response=page(COMPLETED),
    ),
    "GET /v1/adhoc-charges/{id}": Doc(
        summary="Retrieve a charge session",
        description="The session with its energy, duration and cost so far (recomputed on every reading).",
        response=CHARGING,
    ),
    "GET /v1/adhoc-charges/quote": Doc(
        summary="Quote a connector's prices",
        description="What the terminal shows the driver before the tap (AFIR price transparency): the tariff "
        "that applies, prices including VAT and the amount that will be pre-authorised. 400 without both "
        "parameters; 404 for a connector not on an active mapping; 409 `invalid_state` when no tariff applies.",
        response={
            "station_id": "DE*EVP*S0001",
            "connector_id": "2",
            "connector_status": "AVAILABLE",
            "tariff": TARIFF,
            "preauthorize_amount": 5000,
            "display": {
                "price_per_kwh_incl_vat": "0.5900",
                "price_per_minute_incl_vat": "0.0500",
                "session_fee_incl_vat": "0.00",
            },
        },
    ),
    "POST /v1/adhoc-charges/start": Doc(
        summary="Start a charge session",
        description="Starts charging on a connector with an `authorized` payment intent: 201 `pending`; the start "
        "command goes to the station's CPMS asynchronously and its answer moves the session to `charging` "
        "(`charge.started`) or `failed` (`charge.failed`, the intent voided with `session_failed`). Checked "
        "under lock: the intent is authorized, unexpired, unused, in the tariff's currency and, if it names a "
        "terminal, this one (else 409 `payment_intent_unusable`); the connector exists on an active mapping "
        "(else 400) and is free (409 `connector_unavailable`); the terminal is not in maintenance or "
        "decommissioned (409 `terminal_unavailable`); the CPMS adapter is enabled and its circuit closed (503 "
        "`cpms_unavailable`, nothing created); a tariff applies (409 `invalid_state`).",
        request={
            "terminal_id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
            "station_id": "DE*EVP*S0001",
            "connector_id": "2",
            "payment_intent_id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
            "metadata": {"bay": "4"},
        },
        response=PENDING,
    ),
    "PUT /v1/adhoc-charges/{id}/progress": Doc(
        summary="Report charging progress",
        description="A cumulative meter reading (from the CPMS, or from you). The cost is recomputed; when the "
        "total reaches `preauth_amount` the session goes to `stopping` (`stop_reason: cost_cap_reached`, "
        "`charge.cost_cap_reached`) and a stop command goes to the CPMS. A reading older than the last one: "
        "200, unchanged. Less energy with a newer `measured_at`: 400 `energy_decreased`. A session that is not "
        "pending, charging or stopping: 409 `invalid_state`.",
        request={"energy_wh": 12000, "measured_at": "2026-11-23T10:25:11Z", "power_kw": "28.8"},
        response=CHARGING,
    ),
    "POST /v1/adhoc-charges/{id}/complete": Doc(
        summary="Complete a charge session",
        description="Ends the session (`charge.completed` with the final cost) and captures min(total, "
        "`preauth_amount`) on its payment intent, releasing the rest; a total of 0 voids the intent instead. If "
        "the capture fails the session is still `completed`, the intent stays `authorized` and a retry is "
        "scheduled; `amount_captured` shows what was taken. Completing again: 409 `invalid_state`.",
        request={"energy_wh": 18500, "ended_at": "2026-11-23T10:40:11Z", "stop_reason": "completed"},
        response=COMPLETED,
    ),
}

_PRICE = 'Decimal string in major units excluding VAT, at most 4 decimals (`"0.59"`).'
FIELDS = {
    "Tariff": {
        "name": "Shown in the admin.",
        "currency": "ISO 4217 code of every price in the tariff; a session's payment intent must match it.",
        "price_per_kwh": _PRICE,
        "price_per_minute": _PRICE + " Per minute from the start to the last reading.",
        "session_fee": _PRICE + " Once per session.",
        "preauthorize_amount": "What a terminal pre-authorises before a session on this tariff (minor units).",
        "is_default": "The operator's tariff for stations whose mapping names none (one per operator).",
    },
    "TariffPrices": {
        "price_per_kwh": _PRICE,
        "price_per_minute": _PRICE,
        "session_fee": _PRICE,
    },
    "ChargeSession": {
        "object": 'Always `"charge_session"`.',
        "status": "`pending` (start sent) -> `charging` -> `completed`; `stopping` once the cost cap is reached; "
        "`failed` when the CPMS rejected or never confirmed the start.",
        "mapping_id": "The station mapping (`map_...`) the connector belongs to.",
        "preauth_amount": "The intent's `amount_authorized`: the session's cost cap (minor units).",
        "tariff": "Prices copied from the tariff when the session started; later tariff edits do not change them.",
        "energy_wh": "Cumulative energy of the last reading, in Wh.",
        "duration_seconds": "From `started_at` to the last reading (at completion, to its end): billed time.",
        "power_kw": "Power of the last reading, if the CPMS reported one.",
        "last_progress_at": "`measured_at` of the last reading.",
        "cost": "All in minor units: energy + time + session fee = subtotal, rounded half up; VAT on the "
        "subtotal; total = subtotal + VAT.",
        "amount_captured": "What the completion captured on the intent (minor units); 0 until the capture succeeded.",
        "amount_refunded": "The sum of the intent's succeeded refunds (minor units).",
        "stop_reason": "Why the session ended: `completed`, `cost_cap_reached`, `ev_disconnected`, "
        "`stopped_by_operator`, `cpms_rejected`, `cpms_timeout` or `timeout` (no reading for CHARGE_STALE_AFTER).",
        "cpms_session_id": "The CPMS's id of the session, once it accepted the start.",
    },
    "ChargeSessionStart": {
        "terminal_id": "The terminal the driver tapped (`trm_...`).",
        "station_id": "The station's id as mapped (`DE*EVP*S0001`).",
        "connector_id": "The connector on that station (`1`, `2`, ...).",
        "payment_intent_id": "An `authorized` payment intent (`pi_...`): its amount is the session's cost cap.",
    },
    "ChargeSessionProgress": {
        "measured_at": "When the meter was read (RFC 3339; at most 5 minutes ahead of the server clock).",
        "power_kw": "Current power, for display.",
    },
    "Cost": {
        "energy": "energy_wh / 1000 x price_per_kwh, rounded on its own for display (minor units).",
        "time": "duration_seconds / 60 x price_per_minute, rounded on its own for display (minor units).",
        "session_fee": "The tariff's session fee (minor units).",
        "subtotal": "Rounded half up from the unrounded sum of the three parts (minor units).",
        "vat": "subtotal x vat_rate_percent / 100, rounded half up (minor units).",
        "total": "subtotal + vat (minor units); at most `preauth_amount` is captured.",
    },
    "Quote": {
        "tariff": "The tariff that applies: the mapping's, else the operator's default.",
        "preauthorize_amount": "What the terminal will pre-authorise (minor units).",
        "display": "Unit prices including VAT, as the driver must see them.",
    },
}
