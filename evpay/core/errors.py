"""The one base of every error the services raise on purpose, and its common kinds. The API turns them into
RFC 9457 problem details (`evpay.api.errors`); nothing here knows about HTTP beyond the status each one maps to."""


class DomainError(Exception):
    """Base of every error the services raise on purpose. Subclasses fix status, code and title."""

    status_code = 400
    code = "validation_error"
    title = "Invalid request"

    def __init__(
        self,
        detail: str = "",
        *,
        errors: dict | None = None,
        code: str | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status_code, code, title = 400, "validation_error", "Validation error"


class NotFound(DomainError):
    status_code, code, title = 404, "not_found", "Not found"


class InvalidState(DomainError):
    status_code, code, title = 409, "invalid_state", "Invalid state"


class Conflict(DomainError):
    status_code, code, title = 409, "conflict", "Conflict"


class PaymentDeclined(DomainError):
    status_code, code, title = 402, "card_declined", "Card declined"


class UpstreamUnavailable(DomainError):
    status_code, code, title = 503, "processor_unavailable", "Upstream unavailable"


class UpstreamTimeout(DomainError):
    status_code, code, title = 504, "upstream_timeout", "Upstream timeout"


class IdempotencyKeyReused(DomainError):
    status_code, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class IdempotencyKeyInUse(DomainError):
    status_code, code, title = 409, "idempotency_key_in_use", "Idempotency key in use"
