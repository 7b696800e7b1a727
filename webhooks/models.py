from django.db import models
from django.utils import timezone

from evpay.api.ids import PrefixedIdField


class Event(models.Model):
    """The transactional outbox: written in the same transaction as the change it describes."""

    id = PrefixedIdField(prefix="evt")
    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["operator", "-created_at"], name="event_operator_created")]

    def __str__(self):
        return f"{self.type} {self.id}"

    def as_payload(self) -> dict:
        """The event object of the contract."""
        return {
            "id": self.id,
            "type": self.type,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
