"""What a CPMS tells us about our charge sessions (OCPI CommandResults, Sessions, CDRs), applied through the
session services. Registered with `infrastructure.emsp.feed` in `charging.apps`; infrastructure never imports
charging."""

import logging

from evpay.core.errors import InvalidState
from infrastructure.adapters.base import CommandOutcome, CommandResult
from infrastructure.emsp.feed import CpmsSessionReport

from . import services
from .models import ChargeSession, ChargeSessionStatus, StopReason

logger = logging.getLogger(__name__)

S = ChargeSessionStatus
# CommandResult values other than ACCEPTED and TIMEOUT (CANCELED_RESERVATION, EVSE_OCCUPIED, EVSE_INOPERATIVE, FAILED,
# NOT_SUPPORTED, REJECTED, UNKNOWN_RESERVATION) fail a pending start: the charger refused it. TIMEOUT: the charger
# did not answer, so it may still start: the session fails and a stop follows.


class ChargeSessionFeed:
    def find(self, *, operator_id, reference, cpms_session_id):
        sessions = ChargeSession.objects.filter(operator_id=operator_id)
        if reference:
            # Our id as we gave it (the primary key index), else without regard to case (a CPO may lower-case it).
            found = (
                sessions.filter(pk=reference).values_list("pk", flat=True).first()
                or sessions.filter(pk__iexact=reference).values_list("pk", flat=True).first()
            )
            if found:
                return found
        if cpms_session_id:
            return sessions.filter(cpms_session_id__iexact=cpms_session_id).values_list("pk", flat=True).first()
        return None

    def command_result(self, *, session_id, command, result, message):
        session = ChargeSession.objects.get(pk=session_id)
        if command == "STOP_SESSION":
            if result != "ACCEPTED":  # the session ends when the CPO reports it (or the stale job ends it)
                logger.warning("CPMS answered %s to the stop of %s: %s", result, session_id, message)
            return
        if result == "ACCEPTED":
            services.charge_session_start_answer_record(
                session=session, result=CommandResult(CommandOutcome.ACCEPTED, message=message)
            )
        elif result == "TIMEOUT":
            services.charge_session_fail(
                session=session, stop_reason=StopReason.CPMS_TIMEOUT, only_if_pending=True, stop_at_cpms=True
            )
        else:
            services.charge_session_fail(session=session, stop_reason=StopReason.CPMS_REJECTED, only_if_pending=True)

    def session_report(self, *, session_id, report: CpmsSessionReport):
        session = ChargeSession.objects.get(pk=session_id)
        if report.energy_wh is not None and session.status not in (S.COMPLETED, S.FAILED):
            # The reading first: a refused one (less energy than before...) changes nothing, not even the id.
            at = report.ended_at if report.final and report.ended_at else report.measured_at
            if report.status not in ("PENDING", "RESERVATION", "INVALID"):
                session = services.charge_session_record_progress(
                    session=session,
                    energy_wh=report.energy_wh,
                    measured_at=min(at, report.measured_at),
                    cpms_session_id=report.cpms_session_id or None,
                )
        session = services.charge_session_cpms_session_id_record(
            session=session, cpms_session_id=report.cpms_session_id
        )
        if report.status == "INVALID":
            services.charge_session_fail(session=session, stop_reason=StopReason.CPMS_REJECTED, only_if_pending=True)
            return
        if report.status in ("PENDING", "RESERVATION"):
            return  # not charging yet
        if session.status in (S.COMPLETED, S.FAILED):
            if session.status == S.FAILED and report.energy_wh:
                logger.error("CPMS reports %s Wh for %s, which failed: not billed", report.energy_wh, session_id)
            return  # a late or repeated report of an ended session
        if report.final:
            ended_at = report.ended_at or report.measured_at
            if session.started_at and ended_at < session.started_at:
                # The CPO's clock (or its whole seconds) put the end before the start we saw: no time is billed.
                ended_at = session.started_at
            try:
                services.charge_session_complete(session=session, energy_wh=report.energy_wh, ended_at=ended_at)
            except InvalidState:  # completed by a parallel report meanwhile
                pass
