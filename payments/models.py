from django.db import models
from django.utils import timezone

from evpay.core.ids import PrefixedIdField
from evpay.core.money import to_major_units
from evpay.crypto import EncryptedTextField


class PaymentIntentStatus(models.TextChoices):
    REQUIRES_AUTHORIZATION = "requires_authorization"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


class VoidReason(models.TextChoices):
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    ABANDONED = "abandoned"
    SESSION_FAILED = "session_failed"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    EXPIRED = "expired"


S = PaymentIntentStatus
# The only transitions that exist: action -> (statuses it may start from, status it ends in).
# A declined authorization is not a transition: the intent stays requires_authorization.
PAYMENT_INTENT_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "authorize": (frozenset({S.REQUIRES_AUTHORIZATION}), S.AUTHORIZED),
    "capture": (frozenset({S.AUTHORIZED}), S.CAPTURED),
    "void": (frozenset({S.REQUIRES_AUTHORIZATION, S.AUTHORIZED}), S.VOIDED),
    "expire": (frozenset({S.AUTHORIZED}), S.EXPIRED),
}


class PaymentIntent(models.Model):
    id = PrefixedIdField(prefix="pi")
    # Indexed by pi_operator_created, which leads with operator.
    operator = models.ForeignKey(
        "core.Operator", on_delete=models.PROTECT, related_name="payment_intents", db_index=False
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=32, choices=PaymentIntentStatus.choices, default=PaymentIntentStatus.REQUIRES_AUTHORIZATION
    )
    amount_authorized = models.BigIntegerField(default=0)
    amount_capturable = models.BigIntegerField(default=0)
    amount_captured = models.BigIntegerField(default=0)
    # The sum of the intent's succeeded refunds.
    amount_refunded = models.BigIntegerField(default=0)
    # The sum of its pending refunds: reserved under the row lock before the processor is called, so that
    # parallel refunds can never add up to more than amount_captured; released when a refund ends.
    amount_refund_pending = models.BigIntegerField(default=0, editable=False)
    capture_before = models.DateTimeField(null=True, blank=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=32, choices=VoidReason.choices, null=True, blank=True)
    payment_method = models.JSONField(null=True, blank=True)
    processor = models.CharField(max_length=32, default="simulator")
    processor_reference = models.CharField(max_length=100, null=True, blank=True)
    authorization_code = models.CharField(max_length=32, null=True, blank=True)
    last_payment_error = models.JSONField(null=True, blank=True)
    # Declined authorizations so far: part of the processor idempotency key, so that a retry after a time-out
    # repeats the same attempt and a new attempt after a decline is a new one.
    authorization_attempts = models.PositiveIntegerField(default=0, editable=False)
    terminal = models.ForeignKey(
        "terminals.Terminal", null=True, blank=True, on_delete=models.PROTECT, related_name="payment_intents"
    )
    description = models.CharField(max_length=1000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # Set while a processor call for this intent is under way (no row lock is held across it):
    # a parallel transition sees it and gets 409 instead of a second processor call.
    processing_action = models.CharField(max_length=16, null=True, blank=True, editable=False)
    processing_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["operator", "-created_at"], name="pi_operator_created"),
            models.Index(fields=["status", "capture_before"], name="pi_status_capture_before"),
        ]

    def __str__(self):
        return f"{self.id} {to_major_units(self.amount, self.currency)} {self.currency} {self.status}"

    @property
    def amount_refundable(self) -> int:
        return self.amount_captured - self.amount_refunded - self.amount_refund_pending


class RefundStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(models.TextChoices):
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    OVERCHARGE = "overcharge"


R = RefundStatus
# The only transitions that exist: action -> (statuses it may start from, status it ends in).
# A refund is created pending (its amount reserved on the intent); a processor that is unavailable leaves it
# pending and the retry job sends it again with the same idempotency key.
REFUND_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "succeed": (frozenset({R.PENDING}), R.SUCCEEDED),
    "fail": (frozenset({R.PENDING}), R.FAILED),
}


class Refund(models.Model):
    id = PrefixedIdField(prefix="re")
    # Indexed by re_operator_created, which leads with operator.
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="refunds", db_index=False)
    payment_intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    reason = models.CharField(max_length=32, choices=RefundReason.choices, null=True, blank=True)
    failure_reason = models.CharField(max_length=500, null=True, blank=True)
    processor_reference = models.CharField(max_length=100, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # When the processor was last asked (a pending refund whose attempt is older than the claim timeout is
    # sent again by the retry job) and how often.
    attempted_at = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["operator", "-created_at"], name="re_operator_created"),
            models.Index(fields=["status", "attempted_at"], name="re_status_attempted"),
        ]

    def __str__(self):
        return f"{self.id} {self.amount} {self.currency} {self.status}"


class StripeAccount(models.Model):
    """An operator's own Stripe secret key: overrides STRIPE_SECRET_KEY for its intents. Encrypted at rest
    (evpay.crypto), set in the admin, never shown again (only `key_hint`)."""

    operator = models.OneToOneField("core.Operator", on_delete=models.CASCADE, related_name="stripe_account")
    secret_key = EncryptedTextField(purpose="payments.stripe_secret_key", editable=False)
    key_hint = models.CharField(max_length=32, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Stripe account"

    def __str__(self):
        return f"{self.operator} ({self.key_hint})"
