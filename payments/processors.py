"""The payment processor interface (authorize, capture, void, refund) and the built-in `simulator`."""

import hashlib
import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from . import metrics


class ProcessorError(Exception):
    pass


class ProcessorDeclined(ProcessorError):
    def __init__(self, decline_code: str, message: str):
        super().__init__(message)
        self.decline_code = decline_code
        self.message = message


class ProcessorUnavailable(ProcessorError):
    """Down or timing out: nothing happened at the processor, the call may be retried."""


class InvalidPaymentMethod(ProcessorError):
    pass


class ProcessorRefused(ProcessorError):
    """The processor answered and refused the operation for good (e.g. a refund it will not make)."""


@dataclass(frozen=True)
class Authorization:
    reference: str
    authorization_code: str | None
    brand: str
    last4: str
    fingerprint: str


class PaymentProcessor(ABC):
    """Every call carries an idempotency key derived from our object and the action: a call repeated after a
    time-out or a crash has the effect of one call."""

    name: str

    @classmethod
    def for_operator(cls, operator_id: str | None) -> "PaymentProcessor":
        """The processor as configured for this operator (e.g. with its own credentials)."""
        return cls()

    @abstractmethod
    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, metadata: dict | None = None
    ) -> Authorization:
        """Place a hold of `amount`. Raises ProcessorDeclined, InvalidPaymentMethod or ProcessorUnavailable."""

    @abstractmethod
    def capture(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> None:
        """Capture `amount` of the hold and release the rest. Raises ProcessorUnavailable."""

    @abstractmethod
    def void(self, *, reference: str, idempotency_key: str) -> None:
        """Release the whole hold. Raises ProcessorUnavailable."""

    @abstractmethod
    def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str, metadata: dict) -> str:
        """Give back `amount` of what was captured; returns the processor's refund reference. The same
        `idempotency_key` never refunds twice. Raises ProcessorRefused or ProcessorUnavailable."""


class SimulatorProcessor(PaymentProcessor):
    """Deterministic: the token decides the outcome (contract section 1)."""

    name = "simulator"
    CARDS = {
        "tok_visa": ("visa", "4242"),
        "tok_mastercard": ("mastercard", "4444"),
        "tok_amex": ("amex", "8431"),
    }
    DECLINES = {
        "tok_chargeDeclined": ("generic_decline", "The card was declined."),
        "tok_chargeDeclinedInsufficientFunds": ("insufficient_funds", "The card has insufficient funds."),
        "tok_chargeDeclinedExpiredCard": ("expired_card", "The card has expired."),
    }
    UNAVAILABLE = "tok_processorUnavailable"

    def authorize(self, *, amount, currency, token, idempotency_key, metadata=None):
        if token == self.UNAVAILABLE:
            raise ProcessorUnavailable("The simulated processor is unavailable.")
        if token in self.DECLINES:
            raise ProcessorDeclined(*self.DECLINES[token])
        if token not in self.CARDS:
            raise InvalidPaymentMethod(f"Unknown payment method token {token!r}.")
        brand, last4 = self.CARDS[token]
        return Authorization(
            reference=f"sim_{secrets.token_hex(12)}",
            authorization_code=f"{secrets.randbelow(1_000_000):06d}",
            brand=brand,
            last4=last4,
            fingerprint=hashlib.sha256(f"simulator:{token}".encode()).hexdigest()[:16],
        )

    def capture(self, *, reference, amount, currency, idempotency_key):
        self._fail_if_told("capture")

    def void(self, *, reference, idempotency_key):
        self._fail_if_told("void")

    def refund(self, *, reference, amount, currency, idempotency_key, metadata):
        # "refund" in PAYMENT_SIMULATOR_FAIL: the simulated processor refuses refunds (the refund fails).
        if "refund" in settings.PAYMENT_SIMULATOR_FAIL:
            raise ProcessorRefused("The simulated processor refused the refund.")
        return "sim_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

    @staticmethod
    def _fail_if_told(operation: str) -> None:
        # PAYMENT_SIMULATOR_FAIL (e.g. "capture,void") makes those calls fail, to exercise retry paths.
        if operation in settings.PAYMENT_SIMULATOR_FAIL:
            raise ProcessorUnavailable(f"The simulated processor is unavailable ({operation}).")


# name -> class, by path: a processor module builds on this one.
PROCESSORS: dict[str, str] = {
    "simulator": "payments.processors.SimulatorProcessor",
    "stripe": "payments.stripe_processor.StripeProcessor",
}


#: The interface's operations; any other attribute of a processor is passed through uncounted.
METERED_OPERATIONS = frozenset({"authorize", "capture", "void", "refund"})


class MeteredProcessor:
    """A processor whose interface calls are timed and counted by outcome (payments/metrics.py)."""

    def __init__(self, processor: PaymentProcessor):
        self._processor = processor

    def __getattr__(self, name):
        value = getattr(self._processor, name)
        if name not in METERED_OPERATIONS:
            return value

        def metered(*args, **kwargs):
            outcome, decline_code = "succeeded", ""
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            except ProcessorDeclined as declined:
                outcome, decline_code = "declined", declined.decline_code
                raise
            except InvalidPaymentMethod:
                outcome = "invalid_payment_method"
                raise
            except ProcessorRefused:
                outcome = "refused"
                raise
            except ProcessorUnavailable:
                outcome = "unavailable"
                raise
            except Exception:
                outcome = "error"
                raise
            finally:
                metrics.processor_call_observed(
                    processor=self._processor.name,
                    operation=name,
                    outcome=outcome,
                    decline_code=decline_code,
                    seconds=time.perf_counter() - started,
                )

        return metered


def get_processor(name: str | None = None, *, operator_id: str | None = None) -> PaymentProcessor:
    """The one way to get a processor: `name` (an intent's `processor`, default PAYMENT_PROCESSOR) for the
    operator whose intent it is."""
    processor_class: type[PaymentProcessor] = import_string(PROCESSORS[name or settings.PAYMENT_PROCESSOR])
    # Every interface call is timed and counted by outcome (MeteredProcessor).
    return MeteredProcessor(processor_class.for_operator(operator_id))  # type: ignore[return-value]
