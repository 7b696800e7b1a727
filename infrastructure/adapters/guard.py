"""The guard around every adapter call: circuit breaker, retries and per-call metrics.

Every adapter call goes through `GuardedAdapter`: the circuit is checked, the call is made (outside any
database transaction), retried per the operator's `max_retries`, and its outcome and latency recorded.
The circuit state lives on the `AdapterConfig` row, so every web, worker and beat process shares it:

    closed --CPMS_CIRCUIT_FAILURE_THRESHOLD consecutive failures--> open
    open --CPMS_CIRCUIT_RESET_TIMEOUT passed, one trial call let through--> half_open
    half_open --trial succeeds--> closed;  half_open --trial fails--> open

Which adapter class serves an adapter type is the registry's business (`registry.py`); which config an operator
has is the services' (`infrastructure.services.adapter_for`).
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from prometheus_client import Histogram

from ..credentials import credentials_decrypt
from ..models import AdapterCall, AdapterCallCounter, AdapterConfig, CallOutcome, CircuitState, StationMapping
from .base import (
    AdapterError,
    AdapterSettings,
    AdapterTimeout,
    AdapterUnavailable,
    CommandOutcome,
    CommandResult,
    ConnectorStatusReport,
    CpmsAdapter,
    PingResult,
)
from .registry import adapter_class, adapter_config_defaults

logger = logging.getLogger(__name__)


def _now_ms() -> float:
    return time.monotonic() * 1000


# --- circuit breaker --------------------------------------------------------------------------------


def _circuit_admit(config_pk: int) -> bool:
    """May a call be made now? Closed: yes. Open past the reset timeout: exactly one caller (the one whose
    conditional UPDATE wins) is let through as the half-open trial. A half-open trial that never reported
    back (a killed process) is replaced after another reset timeout."""
    row = AdapterConfig.objects.filter(pk=config_pk).values("circuit_state", "circuit_opened_at").first()
    if row is None or row["circuit_state"] == CircuitState.CLOSED:
        return True
    now = timezone.now()
    retry_after = now - timedelta(seconds=settings.CPMS_CIRCUIT_RESET_TIMEOUT)
    if row["circuit_opened_at"] is not None and row["circuit_opened_at"] > retry_after:
        return False
    won = AdapterConfig.objects.filter(
        pk=config_pk, circuit_state=row["circuit_state"], circuit_opened_at=row["circuit_opened_at"]
    ).update(circuit_state=CircuitState.HALF_OPEN, circuit_opened_at=now)
    return won == 1


def _circuit_record(config_pk: int, *, failed: bool) -> None:
    now = timezone.now()
    if not failed:
        AdapterConfig.objects.filter(pk=config_pk).update(
            circuit_state=CircuitState.CLOSED, consecutive_failures=0, circuit_opened_at=None, last_success_at=now
        )
        return
    # One UPDATE: every SET expression sees the row as it was, so the decision is atomic across processes.
    opens = Q(circuit_state=CircuitState.HALF_OPEN) | Q(
        circuit_state=CircuitState.CLOSED, consecutive_failures__gte=settings.CPMS_CIRCUIT_FAILURE_THRESHOLD - 1
    )
    AdapterConfig.objects.filter(pk=config_pk).update(
        consecutive_failures=F("consecutive_failures") + 1,
        last_failure_at=now,
        circuit_state=Case(When(opens, then=Value(CircuitState.OPEN)), default=F("circuit_state")),
        circuit_opened_at=Case(When(opens, then=Value(now)), default=F("circuit_opened_at")),
    )


# --- metrics ----------------------------------------------------------------------------------------


# Counted where the call happens (multiprocess mode): percentiles across processes and pods. The call totals,
# which must survive restarts, are kept in the database below (infrastructure/metrics.py reads them).
CALL_SECONDS = Histogram(
    "evpay_cpms_adapter_call_duration_seconds",
    "Duration of CPMS adapter calls (one attempt), by adapter type, operation and outcome.",
    ["adapter_type", "operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _metrics_record(config: AdapterConfig, *, operation: str, outcome: str, latency_ms: int, error: str = "") -> None:
    CALL_SECONDS.labels(config.adapter_type, operation, outcome).observe(latency_ms / 1000)
    AdapterCall.objects.create(
        operator_id=config.operator_id,
        adapter_type=config.adapter_type,
        operation=operation,
        outcome=outcome,
        latency_ms=latency_ms,
        error=error[:500],
    )
    key = {"adapter_type": config.adapter_type, "operation": operation, "outcome": outcome}
    increment = {"count": F("count") + 1, "latency_ms_sum": F("latency_ms_sum") + latency_ms}
    if AdapterCallCounter.objects.filter(**key).update(**increment):
        return
    try:
        with transaction.atomic():
            AdapterCallCounter.objects.create(**key, count=1, latency_ms_sum=latency_ms)
    except IntegrityError:  # another process created it first
        AdapterCallCounter.objects.filter(**key).update(**increment)


# --- the guarded adapter ----------------------------------------------------------------------------


class GuardedAdapter:
    """An adapter of one operator's adapter type, wrapped in the circuit breaker, retries and metrics.

    - start_session / stop_session -> CommandResult (accepted | sent | rejected | timeout); raise
      AdapterUnavailable when the CPMS failed, the circuit is open or the adapter is disabled (its `not_sent`
      says whether the request may have reached the CPMS). Commands are retried only when the request
      certainly never reached the CPMS.
    - fetch_connector_statuses -> reports; raises AdapterUnavailable. Retried up to max_retries.
    - ping -> PingResult; never raises (a failure is `ok=False` with the error). Retried up to max_retries.
    """

    def __init__(self, config: AdapterConfig):
        self.config = config
        self.adapter_type = config.adapter_type
        self.adapter: CpmsAdapter = adapter_class(config.adapter_type)(
            AdapterSettings(
                operator_id=config.operator_id,
                adapter_type=config.adapter_type,
                base_url=config.base_url,
                timeout_s=config.timeout_ms / 1000,
                credentials=credentials_decrypt(config.credentials_encrypted),
                discovery=config.discovery or {},
            )
        )

    def _keep_discovery(self) -> None:
        """Store what the adapter discovered (OCPI module URLs) for the next calls of every process."""
        discovered, self.adapter.discovered = self.adapter.discovered, None
        if discovered is not None and discovered != self.config.discovery:
            AdapterConfig.objects.filter(pk=self.config.pk).update(discovery=discovered)
            self.config.discovery = discovered

    def _call(self, operation: str, fn: Callable, *, retry_unsent_only: bool, classify=None):
        if not self.config.enabled:
            raise AdapterUnavailable(f"The {self.adapter_type} adapter is disabled.", reason="disabled")
        attempts = 1 + self.config.max_retries
        for attempt in range(attempts):
            if not _circuit_admit(self.config.pk):
                _metrics_record(self.config, operation=operation, outcome=CallOutcome.CIRCUIT_OPEN, latency_ms=0)
                raise AdapterUnavailable(f"The {self.adapter_type} circuit is open.", reason="circuit_open")
            started = _now_ms()
            try:
                try:
                    result = fn()
                finally:
                    self._keep_discovery()
            except AdapterError as exc:
                latency = int(_now_ms() - started)
                outcome = CallOutcome.TIMEOUT if isinstance(exc, AdapterTimeout) else CallOutcome.FAILURE
                _metrics_record(self.config, operation=operation, outcome=outcome, latency_ms=latency, error=str(exc))
                _circuit_record(self.config.pk, failed=True)
                logger.info(
                    "%s.%s failed (attempt %d/%d): %s", self.adapter_type, operation, attempt + 1, attempts, exc
                )
                last_attempt = attempt + 1 >= attempts
                if last_attempt or (retry_unsent_only and not exc.not_sent):
                    raise AdapterUnavailable(str(exc), reason=outcome, not_sent=exc.not_sent) from exc
                time.sleep(min(settings.CPMS_RETRY_BACKOFF * 2**attempt, 2.0))
                continue
            latency = int(_now_ms() - started)
            outcome, error = classify(result) if classify else (CallOutcome.SUCCESS, "")
            _metrics_record(self.config, operation=operation, outcome=outcome, latency_ms=latency, error=error)
            _circuit_record(self.config.pk, failed=False)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    def _classify_command(result: CommandResult):
        if result.accepted:
            return CallOutcome.SUCCESS, ""
        # The CPMS answered (it is healthy); the charger refused or did not answer it.
        return CallOutcome.REJECTED, f"{result.outcome.value}: {result.message}"

    @staticmethod
    def _classify_ping(result: PingResult):
        # The CPMS answered but does not know the station: healthy CPMS, failed test.
        return (CallOutcome.SUCCESS, "") if result.ok else (CallOutcome.REJECTED, result.error or "")

    def _command(self, operation: str, fn: Callable) -> CommandResult:
        try:
            return self._call(operation, fn, retry_unsent_only=True, classify=self._classify_command)
        except AdapterUnavailable as exc:
            if exc.reason == CallOutcome.TIMEOUT:
                return CommandResult(CommandOutcome.TIMEOUT, message=str(exc))
            raise

    def start_session(
        self, *, cpms_station_id: str, connector_id: str, session_id: str, evse_uid: str = ""
    ) -> CommandResult:
        return self._command(
            "start_session",
            lambda: self.adapter.start_session(
                cpms_station_id=cpms_station_id, connector_id=connector_id, evse_uid=evse_uid, session_id=session_id
            ),
        )

    def stop_session(self, *, cpms_station_id: str, cpms_session_id: str | None, session_id: str) -> CommandResult:
        return self._command(
            "stop_session",
            lambda: self.adapter.stop_session(
                cpms_station_id=cpms_station_id, cpms_session_id=cpms_session_id, session_id=session_id
            ),
        )

    def fetch_connector_statuses(self, *, cpms_station_ids: list[str]) -> list[ConnectorStatusReport]:
        return self._call(
            "fetch_connector_statuses",
            lambda: self.adapter.fetch_connector_statuses(cpms_station_ids=cpms_station_ids),
            retry_unsent_only=False,
        )

    def ping(self, *, cpms_station_id: str | None = None) -> PingResult:
        started = _now_ms()
        try:
            return self._call(
                "ping",
                lambda: self.adapter.ping(cpms_station_id=cpms_station_id),
                retry_unsent_only=False,
                classify=self._classify_ping,
            )
        except AdapterUnavailable as exc:
            return PingResult(ok=False, latency_ms=int(_now_ms() - started), error=f"{exc.reason}: {exc}")


class StationAdapter:
    """The adapter of one mapped station:
    `adapter_for_mapping(mapping).start_session(connector_id=..., session_id=...)`."""

    def __init__(self, mapping: StationMapping, guarded: GuardedAdapter):
        self.mapping = mapping
        self.guarded = guarded

    def start_session(self, *, connector_id: str, session_id: str, evse_uid: str = "") -> CommandResult:
        return self.guarded.start_session(
            cpms_station_id=self.mapping.cpms_station_id,
            connector_id=connector_id,
            session_id=session_id,
            evse_uid=evse_uid,
        )

    def stop_session(self, *, cpms_session_id: str | None, session_id: str) -> CommandResult:
        return self.guarded.stop_session(
            cpms_station_id=self.mapping.cpms_station_id, cpms_session_id=cpms_session_id, session_id=session_id
        )

    def fetch_connector_statuses(self) -> list[ConnectorStatusReport]:
        return self.guarded.fetch_connector_statuses(cpms_station_ids=[self.mapping.cpms_station_id])

    def ping(self) -> PingResult:
        return self.guarded.ping(cpms_station_id=self.mapping.cpms_station_id)


def adapter_refusal(*, operator_id: str, adapter_type: str) -> str | None:
    """Why a new command would not be sent now (`disabled`, `circuit_open`), else None. An open circuit past its
    reset timeout admits a trial call, so it does not refuse."""
    row = (
        AdapterConfig.objects.filter(operator_id=operator_id, adapter_type=adapter_type)
        .values("enabled", "circuit_state", "circuit_opened_at")
        .first()
    )
    if row is None:
        return None if adapter_config_defaults(adapter_type)["enabled"] else "disabled"
    if not row["enabled"]:
        return "disabled"
    retry_after = timezone.now() - timedelta(seconds=settings.CPMS_CIRCUIT_RESET_TIMEOUT)
    if row["circuit_state"] == CircuitState.OPEN and (
        row["circuit_opened_at"] is None or row["circuit_opened_at"] > retry_after
    ):
        return "circuit_open"
    return None
