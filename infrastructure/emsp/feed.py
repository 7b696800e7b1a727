"""The seam through which the OCPI receivers feed charge sessions. The charging app registers its feed in its
AppConfig.ready (infrastructure never imports charging); the receivers only parse, authenticate and answer."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class CpmsSessionReport:
    """A Session (PUT/PATCH) or CDR (`final`) from a CPO, read. `status` is the OCPI SessionStatus (ACTIVE,
    COMPLETED, INVALID, PENDING, RESERVATION); a CDR has none. Energy is cumulative, in Wh."""

    cpms_session_id: str
    energy_wh: int | None
    measured_at: datetime
    status: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final: bool = False


class SessionFeed(Protocol):
    def find(self, *, operator_id: str, reference: str | None, cpms_session_id: str | None) -> str | None:
        """Our session id for an OCPI authorization reference (our id, any case) or the CPO's session id."""

    def command_result(self, *, session_id: str, command: str, result: str, message: str) -> None:
        """A CommandResult (ACCEPTED, REJECTED, EVSE_OCCUPIED, ... TIMEOUT) for a command we sent."""

    def session_report(self, *, session_id: str, report: CpmsSessionReport) -> None:
        """A Session update or a CDR. Raises DomainError for a report that cannot apply (changes nothing)."""


_feeds: list[SessionFeed] = []


def session_feed_register(feed: SessionFeed) -> None:
    if feed not in _feeds:
        _feeds.append(feed)


def session_feed() -> SessionFeed:
    if not _feeds:
        raise RuntimeError("no charge-session feed is registered (is the charging app installed?)")
    return _feeds[-1]
