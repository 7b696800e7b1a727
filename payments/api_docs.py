"""OpenAPI words and examples of the payments API (merged by evpay.api.docs)."""

from evpay.api.docs import Doc, page

PI = "/v1/payment-intents"

CREATED = {
    "id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
    "object": "payment_intent",
    "amount": 5000,
    "currency": "EUR",
    "status": "requires_authorization",
    "amount_authorized": 0,
    "amount_capturable": 0,
    "amount_captured": 0,
    "amount_refunded": 0,
    "capture_before": None,
    "authorized_at": None,
    "captured_at": None,
    "voided_at": None,
    "void_reason": None,
    "payment_method": None,
    "processor": "simulator",
    "processor_reference": None,
    "authorization_code": None,
    "last_payment_error": None,
    "terminal_id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
    "charge_session_id": None,
    "description": "Charge at Invalidenstr. 1, Berlin",
    "metadata": {"order": "A-1001"},
    "created_at": "2026-11-23T10:00:00.000000Z",
    "updated_at": "2026-11-23T10:00:00.000000Z",
}
AUTHORIZED = {
    **CREATED,
    "status": "authorized",
    "amount_authorized": 5000,
    "amount_capturable": 5000,
    "capture_before": "2026-11-30T10:00:05.120000Z",
    "authorized_at": "2026-11-23T10:00:05.120000Z",
    "payment_method": {"type": "card_present", "brand": "visa", "last4": "4242", "fingerprint": "c12cf244aed6b3c3"},
    "processor_reference": "sim_75527baa5c9782cbe433438b",
    "authorization_code": "954900",
    "updated_at": "2026-11-23T10:00:05.130000Z",
}
CAPTURED = {
    **AUTHORIZED,
    "status": "captured",
    "amount_capturable": 0,
    "amount_captured": 4200,
    "captured_at": "2026-11-23T10:41:00.000000Z",
    "updated_at": "2026-11-23T10:41:00.000000Z",
}
VOIDED = {
    **AUTHORIZED,
    "status": "voided",
    "amount_capturable": 0,
    "voided_at": "2026-11-23T10:03:00.000000Z",
    "void_reason": "requested_by_customer",
    "updated_at": "2026-11-23T10:03:00.000000Z",
}

REFUND = {
    "id": "re_Vd0cS9yQm3Jt6KpB2wXn8LfA",
    "object": "refund",
    "payment_intent_id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
    "amount": 1200,
    "currency": "EUR",
    "status": "succeeded",
    "reason": "overcharge",
    "failure_reason": None,
    "processor_reference": "sim_re_0f1e2d3c4b5a69788796a5b4",
    "metadata": {"ticket": "SUP-311"},
    "created_at": "2026-11-24T09:00:00.000000Z",
    "updated_at": "2026-11-24T09:00:00.300000Z",
}

_AUTHORIZE_TOKENS = {
    "tok_visa (approved: visa 4242)": "tok_visa",
    "tok_mastercard (approved: mastercard 4444)": "tok_mastercard",
    "tok_amex (approved: amex 8431)": "tok_amex",
    "tok_chargeDeclined (402 generic_decline)": "tok_chargeDeclined",
    "tok_chargeDeclinedInsufficientFunds (402 insufficient_funds)": "tok_chargeDeclinedInsufficientFunds",
    "tok_chargeDeclinedExpiredCard (402 expired_card)": "tok_chargeDeclinedExpiredCard",
    "tok_processorUnavailable (503 processor_unavailable)": "tok_processorUnavailable",
}

OPERATIONS = {
    f"GET {PI}": Doc(
        summary="List payment intents",
        description="Newest first, cursor-paginated. Filters: `status`, `terminal_id`, `currency`, "
        "`created_after`, `created_before`.",
        response=page(CAPTURED),
    ),
    f"POST {PI}": Doc(
        summary="Create a payment intent",
        description="The amount to pre-authorise, in the currency's minor unit (`5000` EUR = 50.00 EUR). The "
        "intent starts in `requires_authorization`; nothing is reserved on a card until it is authorized. "
        "`terminal_id` ties it to a terminal (an unknown or another operator's terminal is 400): a charge "
        "session then accepts it only on that terminal.",
        request={
            "amount": 5000,
            "currency": "EUR",
            "terminal_id": "trm_jlY0Wc7IaEfjmwo2joWQ23Bs",
            "description": "Charge at Invalidenstr. 1, Berlin",
            "metadata": {"order": "A-1001"},
        },
        response=CREATED,
    ),
    f"GET {PI}/{{id}}": Doc(
        summary="Retrieve a payment intent",
        description="The intent as it is now; `last_payment_error` tells why the last authorization failed.",
        response=AUTHORIZED,
    ),
    f"POST {PI}/{{id}}/authorize": Doc(
        summary="Authorize a payment intent",
        description="Reserves `amount` on the card the terminal read (`payment_method.token`; card numbers are "
        "never accepted). Approved: `authorized`, `amount_authorized = amount_capturable = amount`, "
        "`capture_before = authorized_at + PAYMENT_AUTHORIZATION_TTL` (7 days). Declined: 402 `card_declined` "
        "with `decline_code`; the intent stays `requires_authorization` with `last_payment_error`, so another "
        "card can be tried. Processor down: 503 `processor_unavailable`, nothing changed, safe to retry. Not "
        "`requires_authorization`: 409 `invalid_state`.\n\nThe `simulator` processor decides by token: "
        "`tok_visa`, `tok_mastercard`, `tok_amex` approve; `tok_chargeDeclined`, "
        "`tok_chargeDeclinedInsufficientFunds`, `tok_chargeDeclinedExpiredCard` decline; "
        "`tok_processorUnavailable` answers 503; any other token is 400 `invalid_payment_method`. The `stripe` "
        "processor takes a Stripe PaymentMethod id (`pm_card_visa` in test mode).",
        requests={
            name: {"payment_method": {"type": "card_present", "token": token}}
            for name, token in _AUTHORIZE_TOKENS.items()
        },
        response=AUTHORIZED,
    ),
    f"POST {PI}/{{id}}/capture": Doc(
        summary="Capture a payment intent",
        description="Takes `amount_to_capture` (default: all of `amount_capturable`) and releases the rest at "
        "the processor; one capture per intent. More than capturable: 400 `amount_exceeds_capturable`; after "
        "`capture_before`: 409 `authorization_expired`; not `authorized`: 409 `invalid_state`. A charge session "
        "captures its intent itself when it completes.",
        request={"amount_to_capture": 4200},
        response=CAPTURED,
    ),
    f"POST {PI}/{{id}}/void": Doc(
        summary="Void a payment intent",
        description="Cancels an intent that is `requires_authorization` or `authorized` and releases any hold "
        "(`amount_capturable` becomes 0). From `captured`, `voided` or `expired`: 409 `invalid_state` (a captured "
        "payment is given back with a refund).",
        request={"reason": "requested_by_customer"},
        response=VOIDED,
    ),
    "GET /v1/refunds": Doc(
        summary="List refunds",
        description="Newest first, cursor-paginated. Filters: `payment_intent_id`, `status`, `created_after`, "
        "`created_before`.",
        response=page(REFUND),
    ),
    "POST /v1/refunds": Doc(
        summary="Refund a payment",
        description="Gives back all or part of a captured payment intent, several times up to `amount_captured` "
        "(also in parallel: the sum never exceeds it). `amount` defaults to all that is still refundable; more is "
        "400 `amount_exceeds_refundable`; an intent that is not `captured` is 409 `invalid_state`; an unknown "
        "intent, or another operator's, is 404. The answer is the refund: `succeeded` (added to the intent's "
        "`amount_refunded`, `payment_intent.refunded`), `failed` (the processor refused; `failure_reason` says why, "
        "the intent is unchanged) or `pending` (the processor did not answer; it is sent again with the same "
        "idempotency key until it does, and `refund.succeeded` or `refund.failed` tells the outcome).",
        request={
            "payment_intent_id": "pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa",
            "amount": 1200,
            "reason": "overcharge",
            "metadata": {"ticket": "SUP-311"},
        },
        response=REFUND,
    ),
    "GET /v1/refunds/{id}": Doc(summary="Retrieve a refund", description="One refund.", response=REFUND),
}

FIELDS = {
    "Refund": {
        "object": 'Always `"refund"`.',
        "amount": "Given back, in the currency's minor unit.",
        "status": "`pending` (waiting for the processor), `succeeded` or `failed`.",
        "reason": "`requested_by_customer`, `duplicate`, `fraudulent` or `overcharge`.",
        "failure_reason": "Why the processor refused a `failed` refund.",
        "processor_reference": "The processor's id of the refund (a Stripe Refund id with `stripe`).",
        "metadata": "Your own key-value pairs: at most 20 keys of at most 40 characters, values at most 500.",
    },
    "RefundCreate": {
        "payment_intent_id": "A `captured` payment intent (`pi_...`).",
        "amount": "Minor units; default all that is still refundable.",
        "reason": "Why (optional).",
    },
    "PaymentIntent": {
        "object": 'Always `"payment_intent"`.',
        "amount": "Amount to pre-authorise, in the currency's minor unit (`5000` EUR = 50.00 EUR).",
        "currency": "ISO 4217 code, upper case.",
        "status": "`requires_authorization` -> `authorized` -> `captured`; `voided` from either of the first "
        "two; `expired` when `capture_before` passed before a capture.",
        "amount_authorized": "Reserved on the card by the authorization (minor units); 0 before it.",
        "amount_capturable": "What a capture may still take (minor units); 0 once captured, voided or expired.",
        "amount_captured": "Taken from the card (minor units).",
        "amount_refunded": "Given back by succeeded refunds (minor units).",
        "capture_before": "The authorization lapses at this time (`authorized_at` + PAYMENT_AUTHORIZATION_TTL); "
        "the intent then becomes `expired` and the hold is released.",
        "void_reason": "Why the intent was voided: `session_failed` when its charge session never started, "
        "`abandoned` when the session used nothing, or the reason given to void.",
        "payment_method": "The card the terminal read: brand, last four digits and a fingerprint that is the same "
        "for the same card. Null before authorization.",
        "processor": "The processor that handles this intent: `simulator` or `stripe`.",
        "processor_reference": "The processor's id of this payment (a Stripe PaymentIntent id with `stripe`).",
        "authorization_code": "The issuer's approval code.",
        "last_payment_error": "Why the last authorization failed (`code`, the issuer's `decline_code`, "
        "`message`); null after a success.",
        "terminal_id": "The terminal the intent was created for, if any.",
        "charge_session_id": "The charge session that holds this intent, if any.",
        "metadata": "Your own key-value pairs: at most 20 keys of at most 40 characters, values at most 500.",
    },
    "PaymentIntentCreate": {
        "amount": "Minor units, 1 to 99 999 999 (`5000` EUR = 50.00 EUR).",
        "currency": "ISO 4217 code, upper case (`EUR`).",
        "terminal_id": "A terminal of yours (`trm_...`); a charge session then accepts the intent only there.",
        "description": "Free text, at most 1000 characters.",
        "metadata": "Your own key-value pairs: at most 20 keys of at most 40 characters, values at most 500.",
    },
    "CardPresent": {
        "type": 'Always `"card_present"`.',
        "token": "The card token the terminal produced (simulator: `tok_visa`, `tok_chargeDeclined`, ...).",
    },
    "PaymentIntentCapture": {
        "amount_to_capture": "Minor units; default all of `amount_capturable`. The rest is released.",
    },
    "PaymentIntentVoid": {"reason": "Why (optional); shown as `void_reason`."},
    "PaymentMethod": {
        "brand": "`visa`, `mastercard`, `amex`, ...",
        "last4": "The card's last four digits.",
        "fingerprint": "The same for the same card, across intents (no card number is ever stored).",
    },
    "PaymentError": {
        "code": "`card_declined`.",
        "decline_code": "The issuer's reason: `generic_decline`, `insufficient_funds`, `expired_card`, ...",
    },
}
