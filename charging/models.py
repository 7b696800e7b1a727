from typing import Any

from django.db import models
from django.utils import timezone

from evpay.core.ids import PrefixedIdField

PRICE_DIGITS: dict[str, Any] = {"max_digits": 12, "decimal_places": 4}


class Tariff(models.Model):
    """Prices in major units excluding VAT; `preauthorize_amount` in minor units. One default per operator."""

    id = PrefixedIdField(prefix="trf")
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="tariffs")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    price_per_kwh = models.DecimalField(default=0, **PRICE_DIGITS)
    price_per_minute = models.DecimalField(default=0, **PRICE_DIGITS)
    session_fee = models.DecimalField(default=0, **PRICE_DIGITS)
    vat_rate_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    preauthorize_amount = models.BigIntegerField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator"], condition=models.Q(is_default=True), name="one_default_tariff_per_operator"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.currency})"


class StationTariff(models.Model):
    """The tariff of one mapped station, where it is not the operator's default. Kept here, by the app that prices
    sessions: infrastructure knows stations, not tariffs (the mapping API shows and takes `tariff_id` through
    the seam in `infrastructure.selectors`, filled in by `charging.apps`)."""

    mapping = models.OneToOneField(
        "infrastructure.StationMapping", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="station_tariffs")

    def __str__(self):
        return f"{self.mapping_id} -> {self.tariff_id}"


class ChargeSessionStatus(models.TextChoices):
    PENDING = "pending"
    CHARGING = "charging"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"


class StopReason(models.TextChoices):
    COMPLETED = "completed"
    COST_CAP_REACHED = "cost_cap_reached"
    EV_DISCONNECTED = "ev_disconnected"
    STOPPED_BY_OPERATOR = "stopped_by_operator"
    CPMS_REJECTED = "cpms_rejected"
    CPMS_TIMEOUT = "cpms_timeout"
    TIMEOUT = "timeout"


S = ChargeSessionStatus
#: Statuses in which a session occupies its connector (and holds its payment intent).
RUNNING_STATUSES = (S.PENDING, S.CHARGING, S.STOPPING)
# The only transitions that exist: action -> (statuses it may start from, status it ends in).
# Progress readings are recorded in any running status without a transition of their own.
CHARGE_SESSION_TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "begin": (frozenset({S.PENDING}), S.CHARGING),  # the CPMS accepted the start, or the first reading came
    "fail": (frozenset({S.PENDING}), S.FAILED),  # the CPMS rejected the start, or never answered in time
    "reach_cap": (frozenset({S.CHARGING}), S.STOPPING),
    "complete": (frozenset({S.CHARGING, S.STOPPING}), S.COMPLETED),
    "record_progress": (frozenset(RUNNING_STATUSES), None),
}


class ChargeSession(models.Model):
    """An ad-hoc charging session paid by one authorized payment intent. The tariff's prices are copied at
    start; costs are integers in the currency's minor unit, recomputed on every reading (`charging.costs`)."""

    id = PrefixedIdField(prefix="chs")
    # Indexed by chs_operator_created, which leads with operator.
    operator = models.ForeignKey(
        "core.Operator", on_delete=models.PROTECT, related_name="charge_sessions", db_index=False
    )
    status = models.CharField(max_length=16, choices=ChargeSessionStatus.choices, default=S.PENDING)
    terminal = models.ForeignKey("terminals.Terminal", on_delete=models.PROTECT, related_name="charge_sessions")
    mapping = models.ForeignKey(
        "infrastructure.StationMapping", on_delete=models.PROTECT, related_name="charge_sessions"
    )
    # Copied from the mapping and connector: a mapping may later be renamed or lose the connector.
    station_id = models.CharField(max_length=100)
    connector_id = models.CharField(max_length=36)
    payment_intent = models.OneToOneField(
        "payments.PaymentIntent", on_delete=models.PROTECT, related_name="charge_session"
    )
    currency = models.CharField(max_length=3)
    preauth_amount = models.BigIntegerField()
    tariff = models.ForeignKey(Tariff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    price_per_kwh = models.DecimalField(**PRICE_DIGITS)
    price_per_minute = models.DecimalField(**PRICE_DIGITS)
    session_fee = models.DecimalField(**PRICE_DIGITS)
    vat_rate_percent = models.DecimalField(max_digits=5, decimal_places=2)
    energy_wh = models.BigIntegerField(default=0)
    duration_seconds = models.BigIntegerField(default=0)
    power_kw = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    cost_energy = models.BigIntegerField(default=0)
    cost_time = models.BigIntegerField(default=0)
    cost_session_fee = models.BigIntegerField(default=0)
    cost_subtotal = models.BigIntegerField(default=0)
    cost_vat = models.BigIntegerField(default=0)
    cost_total = models.BigIntegerField(default=0)
    amount_captured = models.BigIntegerField(default=0)
    stop_reason = models.CharField(max_length=32, choices=StopReason.choices, null=True, blank=True)
    cpms_session_id = models.CharField(max_length=100, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # With the connector row lock in charge_session_start: never two running sessions on one connector.
            models.UniqueConstraint(
                fields=["mapping", "connector_id"],
                condition=models.Q(status__in=[s.value for s in RUNNING_STATUSES]),
                name="one_running_session_per_connector",
            ),
        ]
        indexes = [
            models.Index(fields=["operator", "-created_at"], name="chs_operator_created"),
            models.Index(fields=["status", "created_at"], name="chs_status_created"),
        ]

    def __str__(self):
        return f"{self.id} {self.station_id}/{self.connector_id} {self.status}"

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_STATUSES
