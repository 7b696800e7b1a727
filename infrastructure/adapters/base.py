"""The CPMS adapter interface: what evpay asks of any charge point management system.

Adapters do I/O only; they never touch the database. Every call goes through
`infrastructure.adapters.guard` (circuit breaker, retries, per-call metrics), never to an adapter directly."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar


class CommandOutcome(StrEnum):
    ACCEPTED = "accepted"  # the CPMS took the command; for a start, the session is (about to be) running
    # The CPMS took the command and forwards it to the charger; the charger's answer comes later (OCPI: a
    # CommandResult posted to our commands receiver, or the Sessions module). Nothing to move yet.
    SENT = "sent"
    REJECTED = "rejected"  # the CPMS or the charger said no (occupied, unknown connector, blocked card...)
    TIMEOUT = "timeout"  # no answer in time: nothing is known to have happened


@dataclass(frozen=True)
class CommandResult:
    """The answer to start_session / stop_session."""

    outcome: CommandOutcome
    cpms_session_id: str | None = None
    message: str = ""

    @property
    def accepted(self) -> bool:
        """The CPMS took the command (at once, or forwarded it to the charger)."""
        return self.outcome in (CommandOutcome.ACCEPTED, CommandOutcome.SENT)


@dataclass(frozen=True)
class ConnectorStatusReport:
    """One connector's status as a CPMS reported it, already mapped onto OCPI (`status`); `protocol` and
    `raw_status` keep what the CPMS actually said."""

    cpms_station_id: str
    connector_id: str
    status: str
    protocol: str
    raw_status: str
    evse_uid: str = ""
    reported_at: datetime | None = None


@dataclass(frozen=True)
class PingResult:
    ok: bool
    latency_ms: int
    error: str | None = None


@dataclass(frozen=True)
class AdapterSettings:
    """What an adapter instance is built from: the operator's AdapterConfig, decrypted."""

    operator_id: str
    adapter_type: str
    base_url: str = ""
    timeout_s: float = 5.0
    credentials: dict = field(default_factory=dict, repr=False)  # never printed
    # What the adapter discovered about the CPMS before (OCPI: the CPO's module URLs), kept between calls
    # by the registry; an adapter that learns something new sets `CpmsAdapter.discovered`.
    discovery: dict = field(default_factory=dict)


class AdapterError(Exception):
    """The CPMS failed (HTTP 5xx, protocol error, refused connection): counts against the circuit."""

    #: True when the request certainly never reached the CPMS, so even a command may be retried.
    not_sent = False


class AdapterConnectionError(AdapterError):
    not_sent = True


class AdapterTimeout(AdapterError):
    """No answer within the configured timeout."""


class AdapterUnavailable(AdapterError):
    """Raised by the guard to callers: the CPMS could not be reached (after retries), the circuit is
    open, or the adapter is disabled. Nothing is known to have happened at the CPMS."""

    def __init__(self, message: str, *, reason: str = "failure", not_sent: bool = False):
        super().__init__(message)
        self.reason = reason  # failure | timeout | circuit_open | disabled
        # True when no request reached the CPMS (disabled, circuit open, connection refused): only then may a
        # command be sent again.
        self.not_sent = not_sent or reason in ("circuit_open", "disabled")


class CpmsAdapter(ABC):
    """One adapter type. `adapter_type` is its registry key and the `adapter_type` of mappings."""

    adapter_type: str = ""
    requires_base_url: bool = False  # an HTTP adapter cannot be enabled without one
    #: Fields of a fresh AdapterConfig of this type (the rest are the model's defaults).
    config_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: AdapterSettings):
        self.settings = settings
        #: set by a call that learnt new discovery data (the registry stores it for the next calls)
        self.discovered: dict | None = None

    @abstractmethod
    def start_session(
        self, *, cpms_station_id: str, connector_id: str, evse_uid: str, session_id: str
    ) -> CommandResult:
        """Ask the CPMS to start charging on a connector. `session_id` is our `chs_...` id (sent as the
        authorization reference, so a repeated command is recognisable at the CPMS)."""

    @abstractmethod
    def stop_session(self, *, cpms_station_id: str, cpms_session_id: str | None, session_id: str) -> CommandResult:
        """Ask the CPMS to stop a session it runs."""

    @abstractmethod
    def fetch_connector_statuses(self, *, cpms_station_ids: list[str]) -> list[ConnectorStatusReport]:
        """Current status of every connector of these stations (unknown stations are left out)."""

    @abstractmethod
    def ping(self, *, cpms_station_id: str | None = None) -> PingResult:
        """Reach the CPMS (and the station in it, when given). Raises AdapterError/AdapterTimeout on failure."""
