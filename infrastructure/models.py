from django.db import models
from django.utils import timezone

from evpay.core.ids import PrefixedIdField


class OcpiStatus(models.TextChoices):
    """OCPI 2.2.1 EVSE statuses: the only connector statuses the API shows (OCPP values are mapped, see
    `infrastructure.statuses`)."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class PowerType(models.TextChoices):
    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ConnectivityTestStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CircuitState(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class AdapterHealth(models.TextChoices):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    DISABLED = "disabled"


class CallOutcome(models.TextChoices):
    """How one adapter call ended. `rejected` is a healthy answer (the CPMS said no); `failure`, `timeout`
    count against the circuit; `circuit_open` means the call was not made at all."""

    SUCCESS = "success"
    REJECTED = "rejected"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CIRCUIT_OPEN = "circuit_open"


class StationMappingQuerySet(models.QuerySet):
    def live(self):
        """Mappings not deleted. Every API read, the poller and the charging app look only at these."""
        return self.filter(deleted_at__isnull=True)


class StationMapping(models.Model):
    """Which CPMS (adapter type) runs one of the operator's stations, and the station's id there.

    DELETE is a soft delete (`deleted_at`): charge sessions and events keep referring to the mapping, and
    the station id becomes free for a new mapping."""

    id = PrefixedIdField(prefix="map")
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="station_mappings")
    station_id = models.CharField(max_length=100)
    adapter_type = models.CharField(max_length=32)
    cpms_station_id = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The last connectivity test (POST /mappings/{id}/test); all null until the first one.
    # "" until the first test.
    connectivity_test_status = models.CharField(
        max_length=16, choices=ConnectivityTestStatus.choices, blank=True, default=""
    )
    connectivity_test_latency_ms = models.IntegerField(null=True, blank=True)
    connectivity_test_error = models.CharField(max_length=500, blank=True, default="")
    connectivity_tested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StationMappingQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "station_id"],
                condition=models.Q(deleted_at__isnull=True),
                name="mapping_station_unique_per_operator",
            ),
        ]
        indexes = [models.Index(fields=["operator", "-created_at"], name="mapping_operator_created")]

    def __str__(self):
        return f"{self.station_id} -> {self.adapter_type}:{self.cpms_station_id}"


class Connector(models.Model):
    """One connector of a mapped station, with its current status (OCPI) as last reported by the CPMS."""

    mapping = models.ForeignKey(StationMapping, on_delete=models.CASCADE, related_name="connectors")
    # Denormalised from the mapping so connector lists and counts filter by operator without a join.
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="connectors")
    connector_id = models.CharField(max_length=36)
    evse_uid = models.CharField(max_length=36, blank=True, default="")
    standard = models.CharField(max_length=40)
    power_type = models.CharField(max_length=16, choices=PowerType.choices)
    max_power_kw = models.DecimalField(max_digits=8, decimal_places=2)
    status = models.CharField(max_length=16, choices=OcpiStatus.choices, default=OcpiStatus.UNKNOWN)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "connector_id"]
        constraints = [
            models.UniqueConstraint(fields=["mapping", "connector_id"], name="connector_unique_per_mapping"),
        ]
        indexes = [
            models.Index(fields=["operator", "status"], name="connector_operator_status"),
            models.Index(fields=["operator", "-created_at"], name="connector_operator_created"),  # list pages
        ]

    def __str__(self):
        return f"{self.mapping.station_id}/{self.connector_id} {self.status}"


class AdapterConfig(models.Model):
    """Per-operator settings of one adapter type, plus its shared circuit-breaker state and call summary.

    The circuit lives here (not in process memory) so web, worker and beat processes see the same state."""

    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="adapter_configs")
    adapter_type = models.CharField(max_length=32)
    enabled = models.BooleanField(default=False)
    base_url = models.URLField(max_length=500, blank=True, default="")
    timeout_ms = models.IntegerField(default=5000)
    max_retries = models.IntegerField(default=2)
    poll_interval_s = models.IntegerField(default=60)
    # Fernet token (key derived from SECRET_KEY) of the credentials JSON; never returned or logged.
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    circuit_state = models.CharField(max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED)
    consecutive_failures = models.IntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # What the adapter discovered about the CPMS (OCPI: the CPO's version details and module URLs), cached for
    # every call of every process; refreshed by the adapter when a module URL answers 404, and by a handshake.
    discovery = models.JSONField(default=dict, blank=True, editable=False)
    # The status last announced by the health probe (an event is emitted when it changes).
    health_status = models.CharField(max_length=16, choices=AdapterHealth.choices, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["adapter_type"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "adapter_type"], name="adapter_config_unique_per_operator"),
            models.CheckConstraint(
                condition=models.Q(timeout_ms__gte=100, timeout_ms__lte=60000), name="adapter_config_timeout_range"
            ),
            models.CheckConstraint(
                condition=models.Q(max_retries__gte=0, max_retries__lte=10), name="adapter_config_retries_range"
            ),
            models.CheckConstraint(
                condition=models.Q(poll_interval_s__gte=10, poll_interval_s__lte=3600),
                name="adapter_config_poll_interval_range",
            ),
        ]

    def __str__(self):
        return f"{self.adapter_type} ({self.operator_id})"

    @property
    def credentials_set(self) -> bool:
        return bool(self.credentials_encrypted)


class AdapterCall(models.Model):
    """One adapter call (outcome, latency): the source of the 5-minute health figures. Pruned after
    `CPMS_CALL_RETENTION`; lifetime totals live in `AdapterCallCounter`."""

    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="+")
    adapter_type = models.CharField(max_length=32)
    operation = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=CallOutcome.choices)
    latency_ms = models.IntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["operator", "adapter_type", "created_at"], name="adapter_call_recent")]

    def __str__(self):
        return f"{self.adapter_type}.{self.operation} {self.outcome} {self.latency_ms} ms"


class AdapterCallCounter(models.Model):
    """Monotonic call totals per adapter type, operation and outcome (Prometheus counters; counted in
    whichever process made the call)."""

    adapter_type = models.CharField(max_length=32)
    operation = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=CallOutcome.choices)
    count = models.BigIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["adapter_type", "operation", "outcome"], name="adapter_call_counter_key"),
        ]

    def __str__(self):
        return f"{self.adapter_type}.{self.operation} {self.outcome}: {self.count}"


class SimulatedConnectorState(models.Model):
    """What the `simulator` CPMS reports for one connector (set by tests and the demo): a raw status as an
    OCPP 1.6 / 2.0.1 or OCPI value. Without a row the simulator reports OCPP 1.6 `Available`."""

    cpms_station_id = models.CharField(max_length=100)
    connector_id = models.CharField(max_length=36)
    protocol = models.CharField(max_length=16)
    raw_status = models.CharField(max_length=40)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cpms_station_id", "connector_id"], name="simulated_connector_key"),
        ]

    def __str__(self):
        return f"{self.cpms_station_id}/{self.connector_id} {self.protocol}:{self.raw_status}"


class OcpiRegistration(models.Model):
    """evpay's OCPI 2.2.1 registration with one operator's CPO (the `ocpi` adapter config): the credentials
    handshake gave the CPO a token (token B, issued by evpay, stored here as a SHA-256 hash only) and gave us the
    CPO's token C (stored encrypted as the adapter's credentials). The CPO calls our OCPI endpoints with token B,
    which scopes every call to this operator. `pending_token_hash` is a token B offered in a handshake that has
    not finished yet (the CPO calls our versions endpoint with it during the handshake)."""

    config = models.OneToOneField(AdapterConfig, on_delete=models.CASCADE, related_name="ocpi_registration")
    operator = models.ForeignKey("core.Operator", on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, blank=True, default="", db_index=True, editable=False)
    pending_token_hash = models.CharField(max_length=64, blank=True, default="", db_index=True, editable=False)
    versions_url = models.URLField(max_length=500, blank=True, default="")
    cpo_country_code = models.CharField(max_length=2, blank=True, default="")
    cpo_party_id = models.CharField(max_length=3, blank=True, default="")
    registered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        state = "registered" if self.registered_at else "not registered"
        return f"OCPI {self.cpo_country_code}*{self.cpo_party_id} ({self.operator_id}, {state})"

    @property
    def registered(self) -> bool:
        return self.registered_at is not None and bool(self.token_hash)
