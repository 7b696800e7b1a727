from django.db import models
from django.db.models import Q
from django.utils import timezone

from evpay.core.ids import PrefixedIdField


class TerminalStatus(models.TextChoices):
    ONLINE = "online"
    OFFLINE = "offline"
    FAULTED = "faulted"
    MAINTENANCE = "maintenance"
    DECOMMISSIONED = "decommissioned"


class Capability(models.TextChoices):
    CHIP_CARD_SUPPORT = "CHIP_CARD_SUPPORT"
    CONTACTLESS_CARD_SUPPORT = "CONTACTLESS_CARD_SUPPORT"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    DEBIT_CARD_PAYABLE = "DEBIT_CARD_PAYABLE"
    PED_TERMINAL = "PED_TERMINAL"


class HealthEventType(models.TextChoices):
    HEARTBEAT = "heartbeat"
    ERROR = "error"
    WARNING = "warning"
    RECOVERED = "recovered"
    REBOOT = "reboot"
    TAMPER = "tamper"


S = TerminalStatus
# Every status change that exists, whoever makes it (operator, health event, offline sweep), in the shape of every
# transitions table (`evpay.core.transitions`): the action is named after the status it leads to,
# action -> (statuses it may start from, target). Staying in the same status is not a transition.
# `decommissioned` is final: it is in no start set.
TERMINAL_TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    S.ONLINE: (frozenset({S.OFFLINE, S.FAULTED, S.MAINTENANCE}), S.ONLINE),
    S.OFFLINE: (frozenset({S.ONLINE, S.FAULTED, S.MAINTENANCE}), S.OFFLINE),
    S.FAULTED: (frozenset({S.ONLINE, S.OFFLINE}), S.FAULTED),
    S.MAINTENANCE: (frozenset({S.ONLINE, S.OFFLINE, S.FAULTED}), S.MAINTENANCE),
    S.DECOMMISSIONED: (frozenset({S.ONLINE, S.OFFLINE, S.FAULTED, S.MAINTENANCE}), S.DECOMMISSIONED),
}
# `faulted` is only ever reached through an error or tamper health event.
OPERATOR_SETTABLE_STATUSES = (S.ONLINE, S.OFFLINE, S.MAINTENANCE, S.DECOMMISSIONED)
# Health events are recorded for these but never move them: the operator owns their status.
OPERATOR_HELD_STATUSES = frozenset({S.MAINTENANCE, S.DECOMMISSIONED})
# The offline sweep turns silent terminals in these statuses offline.
SWEPT_STATUSES = (S.ONLINE, S.FAULTED)


class Terminal(models.Model):
    """A card terminal on a charger. The `health_*` columns summarise its latest health events."""

    id = PrefixedIdField(prefix="trm")
    # Indexed by trm_operator_created and the serial-number constraint, which lead with operator.
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="terminals", db_index=False)
    serial_number = models.CharField(max_length=100)
    vendor = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    firmware_version = models.CharField(max_length=50, blank=True, default="")
    station_id = models.CharField(max_length=100, null=True, blank=True)
    location = models.JSONField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=TerminalStatus.choices, default=TerminalStatus.OFFLINE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    health_last_event_type = models.CharField(max_length=20, choices=HealthEventType.choices, null=True, blank=True)
    health_last_error_code = models.CharField(max_length=100, null=True, blank=True)
    health_signal_strength_dbm = models.IntegerField(null=True, blank=True)
    health_temperature_c = models.FloatField(null=True, blank=True)
    health_errors_24h = models.IntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "serial_number"], name="uniq_terminal_serial_per_operator")
        ]
        # Every health event rewrites last_seen_at and the health columns. None of them is indexed, so that
        # PostgreSQL can update the row in place (a HOT update, helped by fillfactor 80 set in the migration)
        # instead of writing a new entry into every index on each heartbeat.
        indexes = [
            models.Index(fields=["operator", "-created_at"], name="trm_operator_created"),
            models.Index(fields=["operator", "status"], name="trm_operator_status"),
            models.Index(fields=["operator", "vendor"], name="trm_operator_vendor"),
            models.Index(fields=["operator", "model"], name="trm_operator_model"),
            # The offline sweep reads online and faulted terminals of every operator.
            models.Index(fields=["status"], name="trm_status"),
        ]

    def __str__(self):
        return f"{self.serial_number} ({self.id})"


class TerminalHealthEvent(models.Model):
    """What a terminal reported. Kept TERMINAL_HEALTH_RETENTION_DAYS, then pruned."""

    id = PrefixedIdField(prefix="the")
    # Both foreign keys lead an index below; their own indexes would only slow ingestion.
    operator = models.ForeignKey(
        "core.Operator", on_delete=models.CASCADE, related_name="terminal_health_events", db_index=False
    )
    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="health_events", db_index=False)
    type = models.CharField(max_length=20, choices=HealthEventType.choices)
    occurred_at = models.DateTimeField()
    code = models.CharField(max_length=100, null=True, blank=True)
    message = models.CharField(max_length=1000, null=True, blank=True)
    metrics = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            # A terminal's events, latest first (admin inline).
            models.Index(fields=["terminal", "-occurred_at"], name="the_terminal_occurred"),
            # errors_24h per terminal: a small partial index over error events only.
            models.Index(fields=["terminal", "occurred_at"], condition=Q(type="error"), name="the_terminal_errors"),
            # Stats: events of the last 24 h by type, from this index (events are insert-only: index-only scans).
            models.Index(fields=["operator", "occurred_at", "type"], name="the_operator_occurred"),
            # Pruning by age across all operators.
            models.Index(fields=["occurred_at"], name="the_occurred"),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"
