from django.db import models
from django.utils import timezone

from evpay.api.ids import PrefixedIdField


class TerminalStatus(models.TextChoices):
    ONLINE = "online"
    OFFLINE = "offline"
    FAULTED = "faulted"
    MAINTENANCE = "maintenance"
    DECOMMISSIONED = "decommissioned"


class Terminal(models.Model):
    """A card terminal on a charger."""

    id = PrefixedIdField(prefix="trm")
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="terminals")
    serial_number = models.CharField(max_length=100)
    vendor = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    station_id = models.CharField(max_length=100, null=True, blank=True)
    location = models.JSONField(default=dict, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=TerminalStatus.choices, default=TerminalStatus.OFFLINE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    health = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "serial_number"], name="uniq_terminal_serial_per_operator")
        ]

    def __str__(self):
        return f"{self.serial_number} ({self.id})"
