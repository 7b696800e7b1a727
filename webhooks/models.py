from django.db import models
from django.utils import timezone

from evpay.core.ids import PrefixedIdField
from evpay.crypto import EncryptedTextField

# Every event type a subscription may ask for (contract sections 1-3 and 5, plus webhook.test).
EVENT_TYPES: tuple[str, ...] = (
    "payment_intent.created",
    "payment_intent.authorized",
    "payment_intent.authorization_failed",
    "payment_intent.captured",
    "payment_intent.voided",
    "payment_intent.expired",
    "payment_intent.refunded",
    "refund.created",
    "refund.succeeded",
    "refund.failed",
    "charge.started",
    "charge.cost_cap_reached",
    "charge.completed",
    "charge.failed",
    "terminal.registered",
    "terminal.status_changed",
    "infrastructure.connector_status_changed",
    "infrastructure.connectivity_tested",
    "infrastructure.adapter_status_changed",
    "webhook.test",
)
ALL_EVENT_TYPES = "*"
TEST_EVENT_TYPE = "webhook.test"


class Event(models.Model):
    """The transactional outbox: written in the same transaction as the change it describes."""

    id = PrefixedIdField(prefix="evt")
    # Indexed by event_operator_created, which leads with operator.
    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=64, db_index=True)
    # The id of the resource in data.object, copied out so that GET /v1/events?object_id= is an index lookup.
    object_id = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["operator", "-created_at"], name="event_operator_created"),
            models.Index(fields=["operator", "object_id", "-created_at"], name="event_operator_object"),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"


class DisabledReason(models.TextChoices):
    DEACTIVATED = "deactivated"
    TOO_MANY_FAILURES = "too_many_failures"
    ENDPOINT_GONE = "endpoint_gone"


class WebhookSubscription(models.Model):
    id = PrefixedIdField(prefix="whs")
    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    event_types = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=32, choices=DisabledReason.choices, null=True, blank=True)
    # Kept in the clear because we must sign with it; never returned after the response that created it.
    # Encrypted at rest (evpay.crypto): a database dump must not let anyone sign webhooks as us.
    secret = EncryptedTextField(purpose="webhooks.secret", editable=False)
    # After a rotation the old secret signs alongside the new one until previous_secret_expires_at.
    previous_secret = EncryptedTextField(purpose="webhooks.secret", null=True, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Start of the current run of failed attempts (None after a success): drives too_many_failures.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["operator", "-created_at"], name="whs_operator_created")]

    def __str__(self):
        return f"{self.id} {self.url}"

    @property
    def secret_hint(self) -> str:
        return self.secret[:8]

    def signing_secrets(self, now) -> list[str]:
        return signing_secrets(self.secret, self.previous_secret, self.previous_secret_expires_at, now)


def signing_secrets(secret: str, previous_secret: str | None, previous_secret_expires_at, now) -> list[str]:
    """The secrets that sign a webhook now: the secret, and after a rotation the previous one until it expires."""
    secrets = [secret]
    if previous_secret and previous_secret_expires_at and previous_secret_expires_at > now:
        secrets.append(previous_secret)
    return secrets


class WebhookPayload(models.Model):
    """The exact bytes sent for one event (shared by its deliveries): what is signed is what is sent."""

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="webhook_payload")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"payload of {self.event_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


D = DeliveryStatus
# The only transitions: outcome of an attempt (or an admin retry) -> (statuses it may start from, target).
# A failed attempt with retries left keeps the delivery pending.
DELIVERY_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "succeed": (frozenset({D.PENDING}), D.SUCCEEDED),
    "retry_later": (frozenset({D.PENDING}), D.PENDING),
    "fail": (frozenset({D.PENDING}), D.FAILED),
    "retry_now": (frozenset({D.PENDING, D.FAILED}), D.PENDING),
}


class WebhookDelivery(models.Model):
    """One event to one subscription. Created in the transaction of the event; `next_attempt_at` is the
    durable schedule the sweeper works from, so a lost task message only delays a delivery."""

    id = PrefixedIdField(prefix="whd")
    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="webhook_deliveries")
    # Indexed by whd_subscription_created, which leads with subscription.
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    payload = models.ForeignKey(WebhookPayload, on_delete=models.PROTECT, related_name="deliveries")
    event_type = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task message was last sent for this delivery; the sweeper re-sends only after
    # WEBHOOK_REQUEUE_AFTER, so a busy queue is not flooded with duplicates.
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set while an attempt is on its way to the receiver (claim to record): the subscription's in-flight count.
    attempt_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["subscription", "-created_at"], name="whd_subscription_created"),
            models.Index(fields=["next_attempt_at"], name="whd_pending_due", condition=models.Q(status="pending")),
            # Finished deliveries only (pruning, lists by status). With pending ones in it, the planner took it
            # for the slot handoff's search (`whd_waiting`) whenever the statistics said few were pending, and read
            # every pending delivery there; the pending ones have the partial indexes around it.
            models.Index(
                fields=["status", "created_at"], name="whd_finished_created", condition=~models.Q(status="pending")
            ),
            models.Index(
                fields=["subscription"], name="whd_in_flight", condition=models.Q(attempt_started_at__isnull=False)
            ),
            # A subscription's deliveries nobody is sending (given back at its in-flight limit, or claimed): every
            # successful attempt looks here for the one to hand its slot to. Small, whatever the backlog.
            models.Index(
                fields=["subscription", "next_attempt_at"],
                name="whd_waiting",
                condition=models.Q(status="pending", enqueued_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.id} {self.event_type} {self.status}"


class WebhookDeliveryAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, null=True, blank=True)
    response_body = models.TextField(blank=True, default="")  # truncated to RESPONSE_BODY_LIMIT

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="whda_delivery_number")]

    def __str__(self):
        return f"{self.delivery_id} #{self.number}"
