"""The `stripe` processor, on the official Stripe SDK.

authorize = a PaymentIntent created with capture_method=manual and confirmed with the PaymentMethod token
(`pm_...`); capture = capture with amount_to_capture; void = cancel; refund = a Refund. Every request carries
the idempotency key the service derives from our object and the action, so a retry after a time-out (by the SDK
or by us) has the effect of one request.

Errors: a decline (402) -> ProcessorDeclined with Stripe's decline_code; no connection, a time-out, 5xx or 429 ->
ProcessorUnavailable (nothing is recorded on our side; safe to retry); a bad PaymentMethod -> InvalidPaymentMethod;
any other refusal -> ProcessorRefused. The SDK retries STRIPE_MAX_NETWORK_RETRIES times with the same key; the
worst case, (retries + 1) * STRIPE_TIMEOUT plus its back-off, stays well inside PAYMENT_PROCESSOR_CLAIM_TIMEOUT
(checked at start-up, payments.apps)."""

import hashlib

import stripe
from django.conf import settings

from .processors import (
    Authorization,
    InvalidPaymentMethod,
    PaymentProcessor,
    ProcessorDeclined,
    ProcessorRefused,
    ProcessorUnavailable,
)

# The SDK's longest sleep between two retries (stripe._http_client.HTTPClient.MAX_DELAY).
SDK_MAX_RETRY_DELAY = 5


def worst_case_call_seconds() -> float:
    retries = settings.STRIPE_MAX_NETWORK_RETRIES
    return (retries + 1) * settings.STRIPE_TIMEOUT + retries * SDK_MAX_RETRY_DELAY


class StripeProcessor(PaymentProcessor):
    name = "stripe"

    def __init__(self, *, api_key: str):
        self._api_key = api_key
        self._client: stripe.StripeClient | None = None

    @classmethod
    def for_operator(cls, operator_id: str | None) -> "StripeProcessor":
        from .selectors import stripe_secret_key

        return cls(api_key=stripe_secret_key(operator_id=operator_id))

    @property
    def client(self) -> stripe.StripeClient:
        if not self._api_key:
            raise ProcessorUnavailable("No Stripe secret key is set (STRIPE_SECRET_KEY or the operator's own).")
        if self._client is None:
            self._client = stripe.StripeClient(
                self._api_key,
                base_addresses={"api": settings.STRIPE_API_BASE.rstrip("/")},
                max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
                http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
            )
        return self._client

    def authorize(self, *, amount, currency, token, idempotency_key, metadata=None):
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "payment_method": token,
                    "payment_method_types": ["card"],
                    "capture_method": "manual",
                    "confirm": True,
                    "metadata": metadata or {},
                    "expand": ["payment_method"],
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or getattr(exc, "param", None) == "payment_method":
                raise InvalidPaymentMethod(f"Unknown payment method token {token!r}.") from exc
            raise _translate(exc) from exc
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        if intent.status != "requires_capture":
            # Not a hold (e.g. 3-D Secure asked for, which a card terminal cannot do): release it, report a decline.
            error = getattr(intent, "last_payment_error", None)
            decline_code = getattr(error, "decline_code", None) or (
                "authentication_required" if intent.status == "requires_action" else "generic_decline"
            )
            if intent.status != "canceled":
                self.void(reference=intent.id, idempotency_key=f"{idempotency_key}:release")
            message = getattr(error, "message", None) or f"Stripe left the payment {intent.status}."
            raise ProcessorDeclined(decline_code, message)
        card = _card_of(intent.payment_method)
        return Authorization(
            reference=intent.id,
            authorization_code=None,
            brand=card.get("brand") or "unknown",
            last4=card.get("last4") or "",
            fingerprint=card.get("fingerprint") or hashlib.sha256(f"stripe:{token}".encode()).hexdigest()[:16],
        )

    def capture(self, *, reference, amount, currency, idempotency_key):
        self._call(
            lambda: self.client.v1.payment_intents.capture(
                reference, params={"amount_to_capture": amount}, options={"idempotency_key": idempotency_key}
            )
        )

    def void(self, *, reference, idempotency_key):
        try:
            self.client.v1.payment_intents.cancel(reference, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            # Already canceled (e.g. Stripe released an old hold by itself): the hold is gone, as asked.
            if self._call(lambda: self.client.v1.payment_intents.retrieve(reference)).status != "canceled":
                raise _translate(exc) from exc
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def refund(self, *, reference, amount, currency, idempotency_key, metadata):
        # Stripe keeps idempotency keys for 24 h; a refund retried after a longer outage is found by our id in
        # its metadata instead of being made a second time.
        refund = self._existing_refund(reference, metadata.get("evpay_refund_id")) or self._call(
            lambda: self.client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        )
        if refund.status in ("failed", "canceled"):
            reason = getattr(refund, "failure_reason", None)
            raise ProcessorRefused(f"Stripe refund {refund.id} {refund.status}: {reason}.")
        return refund.id

    def _existing_refund(self, reference: str, evpay_refund_id: str | None):
        if not evpay_refund_id:
            return None
        found = self._call(lambda: self.client.v1.refunds.list(params={"payment_intent": reference, "limit": 100}))
        for refund in found.auto_paging_iter():
            if refund.metadata.to_dict().get("evpay_refund_id") == evpay_refund_id:
                return refund
        return None

    @staticmethod
    def _call(request):
        try:
            return request()
        except stripe.StripeError as exc:
            raise _translate(exc) from exc


def _card_of(payment_method) -> dict:
    card = getattr(payment_method, "card", None)  # absent when Stripe did not expand the PaymentMethod
    return card.to_dict() if card is not None else {}


def _translate(exc: stripe.StripeError) -> Exception:
    """Stripe's error -> the processor interface's."""
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline_code = (error.decline_code if error else None) or (
            "generic_decline" if exc.code in (None, "card_declined") else exc.code
        )
        return ProcessorDeclined(decline_code, exc.user_message or "The card was declined.")
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return ProcessorUnavailable(f"Stripe: {exc.__class__.__name__}: {exc.user_message or exc}")
    if exc.http_status is None or exc.http_status >= 500:
        return ProcessorUnavailable(f"Stripe answered {exc.http_status}: {exc.user_message or exc}")
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        # Our key is wrong or lacks the permission: nothing happened at Stripe; fixing the key is the remedy.
        return ProcessorUnavailable(f"Stripe refused the secret key ({exc.http_status}).")
    return ProcessorRefused(f"Stripe refused the request ({exc.http_status}): {exc.user_message or exc}")
