"""Charging writes: tariffs and ad-hoc charge sessions.

Every session transition locks the session row, re-checks the state inside the lock (one table:
`CHARGE_SESSION_TRANSITIONS`) and writes its event in the same transaction. The CPMS (start/stop commands)
and the payment processor (capture/void) are only called outside any transaction: commands go through
Celery tasks enqueued on commit; the payment is settled after the session's transaction has committed.
"""

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from evpay.core.clock import not_in_future
from evpay.core.errors import DomainError, InvalidState, ValidationFailed
from evpay.core.models import Operator
from evpay.core.queries import PreparedQuery, row_update
from evpay.core.transitions import transition_allowed, transition_check
from evpay.core.updates import model_update
from infrastructure.adapters.base import CommandOutcome, CommandResult
from infrastructure.adapters.guard import adapter_refusal
from infrastructure.models import Connector, OcpiStatus, StationMapping
from infrastructure.services import CpmsUnavailable, adapter_for_mapping, connector_status_follow_session
from payments import services as payment_services
from payments.models import PaymentIntent, PaymentIntentStatus, VoidReason
from payments.services import AuthorizationExpired
from terminals.models import Terminal, TerminalStatus

from . import selectors
from .costs import cost_compute
from .events import charge_session_event_emit
from .models import (
    CHARGE_SESSION_TRANSITIONS,
    RUNNING_STATUSES,
    ChargeSession,
    ChargeSessionStatus,
    StationTariff,
    StopReason,
    Tariff,
)

logger = logging.getLogger(__name__)

S = ChargeSessionStatus
# Connector statuses (OCPI) that refuse a new session; AVAILABLE and UNKNOWN (never reported) accept one.
CONNECTOR_UNAVAILABLE_STATUSES = frozenset(
    {
        OcpiStatus.CHARGING,
        OcpiStatus.BLOCKED,
        OcpiStatus.RESERVED,
        OcpiStatus.INOPERATIVE,
        OcpiStatus.OUTOFORDER,
        OcpiStatus.REMOVED,
        OcpiStatus.PLANNED,
    }
)
TERMINAL_UNAVAILABLE_STATUSES = frozenset({TerminalStatus.MAINTENANCE, TerminalStatus.DECOMMISSIONED})


class PaymentIntentUnusable(DomainError):
    status_code, code, title = 409, "payment_intent_unusable", "Payment intent unusable"


class ConnectorUnavailable(DomainError):
    status_code, code, title = 409, "connector_unavailable", "Connector unavailable"


class TerminalUnavailable(DomainError):
    status_code, code, title = 409, "terminal_unavailable", "Terminal unavailable"


class EnergyDecreased(DomainError):
    status_code, code, title = 400, "energy_decreased", "Energy decreased"


class NoTariff(DomainError):
    status_code, code, title = 409, "invalid_state", "No tariff"


# --- tariffs ------------------------------------------------------------------------------------------


def _default_take(operator_id: str) -> None:
    """Clear the operator's current default, so that a tariff may take the flag in this transaction. Default
    changes of one operator queue on the operator row, so the partial unique index never fires. NO KEY UPDATE:
    the commit of any row that references the operator share-locks its row (foreign-key check) and must not wait."""
    Operator.objects.select_for_update(no_key=True).filter(pk=operator_id).first()
    Tariff.objects.filter(operator_id=operator_id, is_default=True).update(is_default=False, updated_at=timezone.now())


def tariff_create(
    *,
    operator: Operator,
    name: str,
    currency: str,
    preauthorize_amount: int,
    price_per_kwh: Decimal = Decimal(0),
    price_per_minute: Decimal = Decimal(0),
    session_fee: Decimal = Decimal(0),
    vat_rate_percent: Decimal = Decimal(0),
    is_default: bool = False,
) -> Tariff:
    with transaction.atomic():
        if is_default:
            _default_take(operator.pk)
        return Tariff.objects.create(
            operator=operator,
            name=name,
            currency=currency,
            preauthorize_amount=preauthorize_amount,
            price_per_kwh=price_per_kwh,
            price_per_minute=price_per_minute,
            session_fee=session_fee,
            vat_rate_percent=vat_rate_percent,
            is_default=is_default,
        )


TARIFF_FIELDS = (
    "name",
    "currency",
    "preauthorize_amount",
    "price_per_kwh",
    "price_per_minute",
    "session_fee",
    "vat_rate_percent",
    "is_default",
)


def tariff_update(*, tariff: Tariff, **changes: Any) -> Tariff:
    """Change the given fields (PATCH). Making a tariff the default takes the flag from the previous one in the
    same transaction. Running sessions keep the prices they copied at start."""
    unknown = set(changes) - set(TARIFF_FIELDS)
    if unknown:
        raise TypeError(f"unknown tariff fields {sorted(unknown)}")
    with transaction.atomic():
        # The operator row first, then the tariff: the order tariff_create takes them in.
        if changes.get("is_default"):
            _default_take(tariff.operator_id)
        tariff = Tariff.objects.select_for_update().get(pk=tariff.pk)
        model_update(instance=tariff, fields=TARIFF_FIELDS, data=changes)
        tariff.save()
    return tariff


def station_tariff_set(mapping_id: str, tariff_id: str | None) -> None:
    """Give a mapped station a tariff of its own, or (None) let the operator's default apply. Called by
    infrastructure's mapping services through the seam (`charging.apps`), inside their transaction, after they
    checked that the operator has the tariff."""
    if tariff_id is None:
        StationTariff.objects.filter(mapping_id=mapping_id).delete()
    else:
        StationTariff.objects.update_or_create(mapping_id=mapping_id, defaults={"tariff_id": tariff_id})


def tariff_applicable(mapping: StationMapping) -> Tariff:
    """The tariff that applies to the mapping's station; 409 when none does."""
    tariff = selectors.tariff_for_mapping(mapping)
    if tariff is None:
        raise NoTariff(
            f"No tariff applies to station {mapping.station_id}: give its mapping a tariff or make "
            "one of the operator's tariffs the default."
        )
    return tariff


# --- charge sessions: helpers ---------------------------------------------------------------------------


def charge_session_for_update(*, operator_id: str, session_id: str) -> ChargeSession | None:
    """The operator's session read with its row lock (the session's row only), for the transaction open that
    then changes it; with the refunded amount of its payment intent, which its representation shows. One
    statement compiled once (`PreparedQuery`): the lookup of every reading, where compiling an ORM query (or
    mapping a raw one) each time cost more CPU than the round trip."""
    return _SESSION_FOR_UPDATE.first(operator=operator_id, pk=session_id)


def _session_for_update(operator: str, pk: str) -> QuerySet[ChargeSession]:
    quote = connection.ops.quote_name
    table, intents = quote(ChargeSession._meta.db_table), quote(PaymentIntent._meta.db_table)
    column = quote(ChargeSession._meta.get_field("payment_intent").column)
    refunded = (
        f"(SELECT {intents}.{quote('amount_refunded')} FROM {intents} WHERE {intents}.{quote('id')} = {table}.{column})"
    )
    return (
        ChargeSession.objects.select_for_update()
        .filter(operator_id=operator, pk=pk)
        .extra(select={"intent_amount_refunded": refunded})
    )


_SESSION_FOR_UPDATE = PreparedQuery(_session_for_update, "operator", "pk")


def _lock(session: ChargeSession) -> ChargeSession:
    return ChargeSession.objects.select_for_update().get(pk=session.pk)


def _can(session: ChargeSession, action: str) -> bool:
    return transition_allowed(CHARGE_SESSION_TRANSITIONS, action=action, status=session.status)


_ACTION_VERBS = {
    "begin": "started",
    "fail": "failed",
    "reach_cap": "stopped at its cost cap",
    "complete": "completed",
    "record_progress": "given progress readings",
}


def _check_transition(session: ChargeSession, action: str) -> str:
    """Whether `action` may happen to `session` now (the table in charging.models); its target status."""
    return transition_check(
        CHARGE_SESSION_TRANSITIONS,
        action=action,
        status=session.status,
        refusal=lambda allowed_from: (
            f"Charge session {session.id} is {session.status}; only a session that is "
            f"{' or '.join(sorted(allowed_from))} can be {_ACTION_VERBS[action]}."
        ),
    )


def _move(session: ChargeSession, action: str) -> None:
    session.status = _check_transition(session, action)


def _recompute(session: ChargeSession) -> None:
    cost = cost_compute(
        currency=session.currency,
        energy_wh=session.energy_wh,
        duration_seconds=session.duration_seconds,
        price_per_kwh=session.price_per_kwh,
        price_per_minute=session.price_per_minute,
        session_fee=session.session_fee,
        vat_rate_percent=session.vat_rate_percent,
    )
    session.cost_energy, session.cost_time, session.cost_session_fee = cost.energy, cost.time, cost.session_fee
    session.cost_subtotal, session.cost_vat, session.cost_total = cost.subtotal, cost.vat, cost.total


def _duration_until(session: ChargeSession, moment: datetime) -> int:
    if session.started_at is None:
        return 0
    return max(0, int((moment - session.started_at).total_seconds()))


def _begin(session: ChargeSession, started_at: datetime) -> None:
    """pending -> charging; the caller emits `charge.started` once the row is saved."""
    _move(session, "begin")
    session.started_at = started_at
    _connector_follows(session, charging=True)


def _enqueue_stop(session: ChargeSession) -> None:
    from .tasks import charge_session_send_stop

    session_id = session.pk
    transaction.on_commit(lambda: charge_session_send_stop.delay(session_id))


def _connector_follows(session: ChargeSession, *, charging: bool) -> None:
    """In the session's transaction: its connector shows CHARGING while it charges, AVAILABLE once it ended.
    (Lock order session -> connector; nothing that locks a connector waits for a session row.)"""
    connector_status_follow_session(
        mapping_id=session.mapping_id,
        connector_id=session.connector_id,
        charging=charging,
        session_id=session.pk if charging else None,  # the one running on it (one per connector)
    )


def _enqueue_settlement(session: ChargeSession, *, countdown: float = 0) -> None:
    from .tasks import charge_session_settle

    session_id = session.pk
    # Outside a transaction this runs at once; inside one (a caller's), only if it commits.
    transaction.on_commit(lambda: charge_session_settle.apply_async(args=[session_id], countdown=countdown))


# --- start --------------------------------------------------------------------------------------------


def charge_session_start(
    *,
    operator: Operator,
    terminal_id: str,
    station_id: str,
    connector_id: str,
    payment_intent_id: str,
    metadata: dict | None = None,
) -> ChargeSession:
    """Create a `pending` session on a locked connector, terminal and payment intent; the start command goes to
    the CPMS after commit. Locks are taken in one order (mapping, connector, terminal, intent) - the mapping
    first, as `mapping_delete` does - so a start and a mapping change never deadlock."""
    from .tasks import charge_session_send_start

    try:
        with transaction.atomic():
            # NO KEY UPDATE: blocks a mapping delete/update, not the key-share lock of the session's own FK.
            mapping = (
                StationMapping.objects.live()
                .select_for_update(no_key=True)
                .filter(operator_id=operator.pk, station_id=station_id, is_active=True)
                .first()
            )
            connector = (
                None
                if mapping is None
                else (Connector.objects.select_for_update().filter(mapping=mapping, connector_id=connector_id).first())
            )
            terminal = (
                Terminal.objects.select_for_update(no_key=True).filter(operator_id=operator.pk, pk=terminal_id).first()
            )
            intent = (
                PaymentIntent.objects.select_for_update().filter(operator_id=operator.pk, pk=payment_intent_id).first()
            )
            connector, terminal, intent = _check_references(
                connector,
                terminal,
                intent,
                station_id=station_id,
                connector_id=connector_id,
                terminal_id=terminal_id,
                payment_intent_id=payment_intent_id,
            )
            connector.mapping = mapping
            tariff = tariff_applicable(mapping)
            _check_intent(intent, tariff=tariff, terminal=terminal)
            _check_connector(connector)
            if terminal.status in TERMINAL_UNAVAILABLE_STATUSES:
                raise TerminalUnavailable(f"Terminal {terminal.pk} is {terminal.status}.")
            refusal = adapter_refusal(operator_id=operator.pk, adapter_type=mapping.adapter_type)
            if refusal:  # the start command could not be sent: nothing is created, the intent stays authorized
                reason = "is disabled" if refusal == "disabled" else "has its circuit open (the CPMS keeps failing)"
                raise CpmsUnavailable(
                    f"The {mapping.adapter_type} adapter of station {mapping.station_id} {reason}; retry later."
                )
            session = ChargeSession.objects.create(
                operator=operator,
                terminal=terminal,
                mapping=mapping,
                station_id=mapping.station_id,
                connector_id=connector.connector_id,
                payment_intent=intent,
                currency=intent.currency,
                preauth_amount=intent.amount_authorized,
                tariff=tariff,
                price_per_kwh=tariff.price_per_kwh,
                price_per_minute=tariff.price_per_minute,
                session_fee=tariff.session_fee,
                vat_rate_percent=tariff.vat_rate_percent,
                metadata=metadata or {},
            )
            _recompute(session)  # a session fee is owed from the first moment
            session.save()
            session_id = session.pk
            transaction.on_commit(lambda: charge_session_send_start.delay(session_id))
    except IntegrityError as exc:  # the constraints behind the locks; reached only if a lock was bypassed
        if "one_running_session_per_connector" in str(exc):
            raise ConnectorUnavailable(f"A charge session runs on connector {connector_id} of {station_id}.")
        raise PaymentIntentUnusable(f"Payment intent {payment_intent_id} is used by another charge session.")
    return session


def _check_references(
    connector: Connector | None,
    terminal: Terminal | None,
    intent: PaymentIntent | None,
    *,
    station_id: str,
    connector_id: str,
    terminal_id: str,
    payment_intent_id: str,
) -> tuple[Connector, Terminal, PaymentIntent]:
    """All three found (of the operator), or 400 naming each one that is not."""
    errors: dict[str, list[str]] = {}
    if connector is None:
        errors["connector_id"] = [f"No connector {connector_id!r} on an active mapping of station {station_id!r}."]
    if terminal is None:
        errors["terminal_id"] = [f"No terminal {terminal_id!r}."]
    if intent is None:
        errors["payment_intent_id"] = [f"No payment intent {payment_intent_id!r}."]
    if connector is None or terminal is None or intent is None:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    return connector, terminal, intent


def _check_intent(intent: PaymentIntent, *, tariff: Tariff, terminal: Terminal) -> None:
    def unusable(reason: str) -> PaymentIntentUnusable:
        return PaymentIntentUnusable(f"Payment intent {intent.pk} {reason}.")

    if intent.status != PaymentIntentStatus.AUTHORIZED:
        raise unusable(f"is {intent.status}; a session needs an authorized intent")
    if intent.capture_before is not None and intent.capture_before <= timezone.now():
        raise unusable("has an expired authorization")
    if intent.processing_action is not None:
        raise unusable(f"has a {intent.processing_action} in progress")
    if ChargeSession.objects.filter(payment_intent=intent).exists():
        raise unusable("is used by another charge session")
    if intent.currency != tariff.currency:
        raise unusable(f"is in {intent.currency}; the station's tariff is in {tariff.currency}")
    if intent.terminal_id is not None and intent.terminal_id != terminal.pk:
        raise unusable(f"was created for terminal {intent.terminal_id}, not {terminal.pk}")


def _reported_charging_was_ours(connector: Connector) -> bool:
    """CHARGING reported by the CPMS while one of our own sessions ran on the connector says nothing about it
    once that session has ended; until the next status poll it must not block the next driver."""
    reported_at = connector.status_updated_at
    if connector.status != OcpiStatus.CHARGING or reported_at is None:
        return False
    return ChargeSession.objects.filter(
        Q(completed_at__gte=reported_at) | Q(status=S.FAILED, updated_at__gte=reported_at),
        mapping_id=connector.mapping_id,
        connector_id=connector.connector_id,
        created_at__lte=reported_at,
    ).exists()


def _check_connector(connector: Connector) -> None:
    running = (
        ChargeSession.objects.filter(
            mapping_id=connector.mapping_id, connector_id=connector.connector_id, status__in=RUNNING_STATUSES
        )
        .values_list("pk", flat=True)
        .first()
    )
    if running:
        raise ConnectorUnavailable(
            f"Connector {connector.connector_id} of {connector.mapping.station_id} is busy (charge session {running})."
        )
    if connector.status in CONNECTOR_UNAVAILABLE_STATUSES and not _reported_charging_was_ours(connector):
        raise ConnectorUnavailable(
            f"Connector {connector.connector_id} of {connector.mapping.station_id} is {connector.status}."
        )


# --- the CPMS's answers -----------------------------------------------------------------------------------


def charge_session_start_command_send(*, session: ChargeSession) -> ChargeSession:
    """Send the start command (no transaction held) and record the answer. Raises AdapterUnavailable when
    nothing is known to have reached the CPMS (the caller retries; CHARGE_START_TIMEOUT ends it)."""
    session = ChargeSession.objects.select_related("mapping").get(pk=session.pk)
    if session.status != S.PENDING or session.cpms_session_id:
        return session  # answered already (a redelivered task)
    connector = Connector.objects.filter(mapping_id=session.mapping_id, connector_id=session.connector_id).first()
    result = adapter_for_mapping(session.mapping).start_session(
        connector_id=session.connector_id, session_id=session.pk, evse_uid=connector.evse_uid if connector else ""
    )
    return charge_session_start_answer_record(session=session, result=result)


def charge_session_start_answer_record(*, session: ChargeSession, result: CommandResult) -> ChargeSession:
    """accepted -> charging (`charge.started`); rejected -> failed, the hold is released. `sent` (the CPMS
    forwards it to the charger) and `timeout` (it may have arrived) change nothing: the outcome comes from the
    CPMS (its command result, a session report) or, failing that, from the start timeout, which fails the session
    and sends a stop. An acceptance for a session that has failed meanwhile gets a stop command: nothing may
    charge unpaid."""
    if result.outcome in (CommandOutcome.SENT, CommandOutcome.TIMEOUT):
        logger.info("Start of %s: %s (%s); waiting for the CPMS", session.pk, result.outcome.value, result.message)
        return session
    if result.outcome is not CommandOutcome.ACCEPTED:
        return charge_session_fail(session=session, stop_reason=StopReason.CPMS_REJECTED, only_if_pending=True)
    with transaction.atomic():
        session = _lock(session)
        if result.cpms_session_id and not session.cpms_session_id:
            session.cpms_session_id = result.cpms_session_id
        if _can(session, "begin"):
            _begin(session, timezone.now())
            session.save()
            charge_session_event_emit(session=session, type="charge.started")
        elif session.status in RUNNING_STATUSES:
            session.save()  # charging already (a reading came first): keep the CPMS's id
        else:
            session.save()
            logger.warning("CPMS accepted the start of %s, which is %s: stopping it", session.pk, session.status)
            _enqueue_stop(session)
    return session


def charge_session_cpms_session_id_record(*, session: ChargeSession, cpms_session_id: str) -> ChargeSession:
    """The CPMS's own id of the session (OCPI: learnt from its Sessions module), used by the stop command."""
    if not cpms_session_id or session.cpms_session_id == cpms_session_id:
        return session
    with transaction.atomic():
        session = _lock(session)
        if session.cpms_session_id != cpms_session_id:
            session.cpms_session_id = cpms_session_id[:100]
            session.save(update_fields=["cpms_session_id", "updated_at"])
    return session


def charge_session_stop_command_send(*, session: ChargeSession) -> CommandResult:
    """Send the stop command (no transaction held). The session ends when the CPMS reports completion (or the
    stale-session job ends it); a refusal is logged. Raises AdapterUnavailable for the caller to retry."""
    session = ChargeSession.objects.select_related("mapping").get(pk=session.pk)
    result = adapter_for_mapping(session.mapping).stop_session(
        cpms_session_id=session.cpms_session_id, session_id=session.pk
    )
    if not result.accepted:
        logger.warning("CPMS answered %s to the stop of %s: %s", result.outcome.value, session.pk, result.message)
    return result


# --- progress -----------------------------------------------------------------------------------------


# What a reading may change (only what it changed is written).
_PROGRESS_FIELDS = (
    "status",
    "started_at",
    "energy_wh",
    "last_progress_at",
    "cpms_session_id",
    "power_kw",
    "duration_seconds",
    "cost_energy",
    "cost_time",
    "cost_session_fee",
    "cost_subtotal",
    "cost_vat",
    "cost_total",
    "stop_reason",
)


def charge_session_record_progress(
    *,
    session: ChargeSession,
    energy_wh: int,
    measured_at: datetime,
    power_kw: Decimal | None = None,
    cpms_session_id: str | None = None,
    locked: bool = False,
) -> ChargeSession:
    """A cumulative reading. Older than the last one: ignored (returned unchanged). Less energy with a newer
    time: 400 `energy_decreased`. The first reading of a pending session starts it; reaching the cost cap
    moves it to `stopping` and sends the stop command. `cpms_session_id` (a CPMS's own report) is kept with the
    reading, so the stop it may trigger names the CPMS's session. `locked`: the caller read `session` with its
    row lock (`charge_session_for_update`) in the transaction open (the API request is one), so it is not read
    again."""
    not_in_future(measured_at, field="measured_at")
    if locked and not connection.in_atomic_block:
        raise RuntimeError("charge_session_record_progress(locked=True) outside the transaction of the lock")
    # Locked by the API's request transaction: no savepoint, as a refusal below has written nothing and the
    # request's transaction ends with it.
    with transaction.atomic(savepoint=not locked):
        if not locked:
            session = _lock(session)
        _check_transition(session, "record_progress")
        if session.last_progress_at is not None and measured_at <= session.last_progress_at:
            return session
        if energy_wh < session.energy_wh:
            raise EnergyDecreased(
                f"energy_wh {energy_wh} is lower than the last reading ({session.energy_wh} Wh); readings are "
                "cumulative.",
                errors={"energy_wh": [f"At least {session.energy_wh}."]},
            )
        before = {name: getattr(session, name) for name in _PROGRESS_FIELDS}
        events = []
        if _can(session, "begin"):
            _begin(session, max(measured_at, session.created_at))  # billed time never precedes the tap
            events.append("charge.started")
        session.energy_wh = energy_wh
        session.last_progress_at = measured_at
        if cpms_session_id:
            session.cpms_session_id = cpms_session_id[:100]
        if power_kw is not None:
            session.power_kw = power_kw
        session.duration_seconds = _duration_until(session, measured_at)
        _recompute(session)
        if _can(session, "reach_cap") and session.cost_total >= session.preauth_amount:
            _move(session, "reach_cap")
            session.stop_reason = StopReason.COST_CAP_REACHED
            events.append("charge.cost_cap_reached")
            _enqueue_stop(session)
        changed = [name for name in _PROGRESS_FIELDS if getattr(session, name) != before[name]]
        row_update(session, [*changed, "updated_at"])  # as save(update_fields=...) would, for every reading
        for event_type in events:
            charge_session_event_emit(session=session, type=event_type)
    return session


# --- completion and failure -------------------------------------------------------------------------------


def charge_session_complete(
    *,
    session: ChargeSession,
    energy_wh: int | None = None,
    ended_at: datetime | None = None,
    stop_reason: str | None = None,
) -> ChargeSession:
    """charging/stopping -> completed with the final cost (`charge.completed`); then, after commit, the total
    capped at `preauth_amount` is captured (a total of 0 voids the intent). A failed capture leaves the intent
    authorized and schedules a retry; the session stays completed."""
    now = timezone.now()
    if ended_at is not None:
        not_in_future(ended_at, field="ended_at", now=now)
    with transaction.atomic():
        session = _lock(session)
        _check_transition(session, "complete")
        if energy_wh is not None:
            if energy_wh < session.energy_wh:
                raise EnergyDecreased(
                    f"energy_wh {energy_wh} is lower than the last reading ({session.energy_wh} Wh).",
                    errors={"energy_wh": [f"At least {session.energy_wh}."]},
                )
            session.energy_wh = energy_wh
        end = ended_at or now
        if session.started_at is not None and end < session.started_at:
            raise ValidationFailed(
                "ended_at is before the session started.",
                errors={"ended_at": [f"Not before {session.started_at.isoformat()}."]},
            )
        # A reading later than the end (clock skew) never shortens the billed time.
        session.duration_seconds = max(session.duration_seconds, _duration_until(session, end))
        _recompute(session)
        _move(session, "complete")
        # The cap's reason stays: it is why the session stopped.
        session.stop_reason = session.stop_reason or stop_reason or StopReason.COMPLETED
        session.completed_at = end
        session.save()
        charge_session_event_emit(session=session, type="charge.completed")
        _connector_follows(session, charging=False)
    return charge_session_payment_settle(session=session)


def charge_session_fail(
    *, session: ChargeSession, stop_reason: str, only_if_pending: bool = False, stop_at_cpms: bool = False
) -> ChargeSession:
    """pending -> failed (`charge.failed`); after commit the payment intent is voided (`session_failed`).
    `only_if_pending`: a late answer for a session that moved on meanwhile changes nothing. `stop_at_cpms`: the
    start may have reached the CPMS (no answer in time), so a stop follows: nothing may charge unpaid."""
    with transaction.atomic():
        session = _lock(session)
        if only_if_pending and not _can(session, "fail"):
            logger.info("Not failing %s (%s): it is %s", session.pk, stop_reason, session.status)
            return session
        _move(session, "fail")
        session.stop_reason = stop_reason
        session.completed_at = timezone.now()
        session.save()
        charge_session_event_emit(session=session, type="charge.failed")
        _connector_follows(session, charging=False)
        if stop_at_cpms:
            _enqueue_stop(session)
    return charge_session_payment_settle(session=session)


# --- payment settlement -------------------------------------------------------------------------------------


def charge_session_payment_settle(*, session: ChargeSession, schedule_retry: bool = True) -> ChargeSession:
    """Make the payment intent match the ended session: a completed session captures min(total, preauth)
    (0 voids), a failed one voids (`session_failed`). Runs outside any transaction; safe to repeat. When the
    processor is unavailable the intent stays authorized and, with `schedule_retry`, a retry is enqueued;
    without it the UpstreamUnavailable is raised (the retrying task decides). `amount_captured` is copied from
    the captured intent, so a run cut off between the capture and that write is finished by the next one."""
    session = ChargeSession.objects.select_related("payment_intent").get(pk=session.pk)
    intent = session.payment_intent
    if session.status not in (S.COMPLETED, S.FAILED):
        return session
    if intent.status == PaymentIntentStatus.AUTHORIZED:
        amount = min(session.cost_total, session.preauth_amount) if session.status == S.COMPLETED else 0
        try:
            if amount > 0:
                intent = payment_services.payment_intent_capture(intent=intent, amount_to_capture=amount)
            else:
                reason = VoidReason.SESSION_FAILED if session.status == S.FAILED else VoidReason.ABANDONED
                intent = payment_services.payment_intent_void(intent=intent, reason=reason)
        except AuthorizationExpired:
            logger.error(
                "Charge session %s: the authorization of %s expired before it was captured", session.pk, intent.pk
            )
            return session
        except DomainError as exc:
            if not schedule_retry:
                raise
            logger.warning("Charge session %s: settling %s failed (%s); retry scheduled", session.pk, intent.pk, exc)
            _enqueue_settlement(session, countdown=settings.CHARGE_PAYMENT_RETRY_DELAY)
            return session
    if intent.status == PaymentIntentStatus.CAPTURED and session.amount_captured != intent.amount_captured:
        with transaction.atomic():
            session = _lock(session)
            session.amount_captured = intent.amount_captured
            session.save(update_fields=["amount_captured", "updated_at"])
    session.payment_intent = intent
    return session


# --- periodic jobs ----------------------------------------------------------------------------------------


def charge_sessions_fail_unstarted(*, limit: int = 500) -> int:
    """Pending past CHARGE_START_TIMEOUT: the CPMS never confirmed the start. Failed (`cpms_timeout`), hold
    released, and a stop sent: the start may have reached the charger after all."""
    failed = 0
    for session in selectors.sessions_pending_past_start_timeout(limit=limit):
        session = charge_session_fail(
            session=session, stop_reason=StopReason.CPMS_TIMEOUT, only_if_pending=True, stop_at_cpms=True
        )
        if session.status == S.FAILED:
            failed += 1
    return failed


def charge_sessions_complete_stale(*, limit: int = 500) -> int:
    """Charging or stopping without a reading for CHARGE_STALE_AFTER: completed (`timeout`) and billed up to
    the last reading."""
    completed = 0
    for session in selectors.sessions_stale(limit=limit):
        try:
            last_seen = session.last_seen  # type: ignore[attr-defined]  # annotated by selectors.sessions_stale
            charge_session_complete(session=session, ended_at=last_seen, stop_reason=StopReason.TIMEOUT)
            completed += 1
        except InvalidState:  # completed meanwhile
            pass
    return completed
