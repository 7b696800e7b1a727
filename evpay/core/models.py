import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from evpay.core.ids import PrefixedIdField

RESOURCES = ("payments", "charges", "terminals", "webhooks", "infrastructure")
ALL_SCOPES = tuple(f"{r}:{a}" for r in RESOURCES for a in ("read", "write"))
READ_SCOPES = tuple(f"{r}:read" for r in RESOURCES)


class Operator(models.Model):
    """A charge point operator: the customer. Every resource belongs to exactly one."""

    id = PrefixedIdField(prefix="op")
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin"
    VIEWER = "viewer"


class User(AbstractUser):
    """A person at an operator. `admin` has every scope, `viewer` every read scope."""

    operator = models.ForeignKey(Operator, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    @property
    def scopes(self) -> frozenset[str]:
        if self.operator_id is None:
            return frozenset()
        return frozenset(["*"]) if self.role == Role.ADMIN else frozenset(READ_SCOPES)

    @property
    def credential_id(self) -> str:
        return f"user:{self.pk}"


class ApiKey(models.Model):
    """`evp_<prefix>_<secret>`: only the SHA-256 of the whole key is stored; the prefix stays visible."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"evp_{self.prefix}_… ({self.name or self.operator})"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotencyKey(models.Model):
    """A POST's Idempotency-Key, scoped per operator; holds the first response for replay."""

    # Indexed by the key's unique constraint, which leads with operator.
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, db_index=False)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operator", "key"], name="uniq_idempotency_key_per_operator")]

    def __str__(self):
        return f"{self.key} ({self.operator_id})"
