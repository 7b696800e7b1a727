"""Terminal writes: registration, health events, status changes, the offline sweep and pruning.
Every status change goes through `_change_status` (transitions table checked, row locked, event emitted in the
same transaction)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from evpay.core.clock import not_in_future
from evpay.core.errors import DomainError, ValidationFailed
from evpay.core.models import Operator
from evpay.core.pruning import prune_in_batches
from evpay.core.queries import PreparedQuery, row_insert, row_update
from evpay.core.transitions import transition_check

from .events import terminal_registered_emit, terminal_status_changed_emit
from .models import (
    OPERATOR_HELD_STATUSES,
    OPERATOR_SETTABLE_STATUSES,
    SWEPT_STATUSES,
    TERMINAL_TRANSITIONS,
    HealthEventType,
    Terminal,
    TerminalHealthEvent,
    TerminalStatus,
)

SWEEP_BATCH = 500
PRUNE_BATCH = 10_000


class TerminalExists(DomainError):
    status_code, code, title = 409, "terminal_exists", "Terminal exists"


# NO KEY UPDATE (the id never changes): see `_lock`.
_FOR_UPDATE = PreparedQuery(
    lambda operator_id, terminal_id: Terminal.objects.select_for_update(no_key=True).filter(
        operator_id=operator_id, pk=terminal_id
    ),
    "operator_id",
    "terminal_id",
)


def terminal_for_update(*, operator_id: str, terminal_id: str) -> Terminal | None:
    """The operator's terminal read with its row lock, for the transaction open that then changes it. Compiled
    once: the lookup of every health event, where compiling the query each time cost more CPU than the round
    trip."""
    return _FOR_UPDATE.first(operator_id=operator_id, terminal_id=terminal_id)


def _lock(terminal: Terminal) -> Terminal:
    # NO KEY UPDATE (the id never changes): the commit of a payment intent or charge session on this terminal
    # share-locks its row (foreign-key check) and must not wait for a health event or the offline sweep.
    return Terminal.objects.select_for_update(no_key=True).get(pk=terminal.pk)


def _refusal(terminal: Terminal, target: str) -> str:
    if terminal.status == TerminalStatus.DECOMMISSIONED:
        return f"Terminal {terminal.id} is decommissioned; a decommissioned terminal cannot change status."
    if terminal.status == target:
        return f"Terminal {terminal.id} is {target} already."
    return f"Terminal {terminal.id} is {terminal.status}; it cannot become {target}."


def _check_transition(terminal: Terminal, target: str) -> None:
    """Whether `terminal` may move to `target` now (the table in terminals.models)."""
    transition_check(
        TERMINAL_TRANSITIONS, action=target, status=terminal.status, refusal=lambda _: _refusal(terminal, target)
    )


def _change_status(terminal: Terminal, target: str, reason: str, *, also_saved: tuple[str, ...] = ()) -> Terminal:
    """Move a locked terminal to `target`, save it and emit `terminal.status_changed`. `also_saved`: other
    columns the caller changed (the UPDATE writes only the changed ones)."""
    _check_transition(terminal, target)
    previous = terminal.status
    terminal.status = target
    terminal.status_reason = reason
    terminal.save(update_fields=("status", "status_reason", *also_saved, "updated_at"))
    terminal_status_changed_emit(terminal=terminal, previous_status=previous)
    return terminal


def terminal_register(
    *,
    operator: Operator,
    serial_number: str,
    vendor: str = "",
    model: str = "",
    firmware_version: str = "",
    station_id: str | None = None,
    location: dict | None = None,
    capabilities: list[str] | None = None,
    metadata: dict | None = None,
) -> Terminal:
    """A new terminal starts `offline` until its first health event."""
    try:
        with transaction.atomic():
            terminal = Terminal.objects.create(
                operator=operator,
                serial_number=serial_number,
                vendor=vendor,
                model=model,
                firmware_version=firmware_version,
                station_id=station_id,
                location=location,
                capabilities=capabilities or [],
                metadata=metadata or {},
                status=TerminalStatus.OFFLINE,
            )
            terminal_registered_emit(terminal=terminal)
    except IntegrityError as duplicate:  # uniq_terminal_serial_per_operator, also when a parallel request won
        raise TerminalExists(
            f"Operator {operator.pk} has a terminal with serial number {serial_number!r} already.",
            errors={"serial_number": ["A terminal with this serial number exists."]},
        ) from duplicate
    return terminal


def terminal_status_set(*, terminal: Terminal, status: str, reason: str = "") -> Terminal:
    """An operator's status change: online, offline, maintenance or decommissioned (final)."""
    if status not in OPERATOR_SETTABLE_STATUSES:
        raise ValidationFailed(
            f"{status!r} cannot be set by an operator.",
            errors={"status": [f"One of {', '.join(OPERATOR_SETTABLE_STATUSES)}."]},
        )
    with transaction.atomic():
        return _change_status(_lock(terminal), status, reason or "")


def _status_after(status: str, event_type: str) -> str:
    """Where a health event moves a terminal that the operator does not hold."""
    if event_type in (HealthEventType.ERROR, HealthEventType.TAMPER):
        return TerminalStatus.FAULTED
    if event_type == HealthEventType.WARNING:
        return status
    if event_type == HealthEventType.RECOVERED and status == TerminalStatus.FAULTED:
        return TerminalStatus.ONLINE
    # A heartbeat, reboot or recovery proves an offline terminal alive; a fault stays until `recovered`.
    return TerminalStatus.ONLINE if status == TerminalStatus.OFFLINE else status


def _errors_24h(terminal_id: str, now: datetime) -> int:
    return TerminalHealthEvent.objects.filter(
        terminal_id=terminal_id, type=HealthEventType.ERROR, occurred_at__gte=now - timedelta(hours=24)
    ).count()


# What a health event may change besides the status (written only when it did).
_HEALTH_FIELDS = (
    "last_seen_at",
    "health_last_event_type",
    "health_last_error_code",
    "health_signal_strength_dbm",
    "health_temperature_c",
    "health_errors_24h",
)


def terminal_health_event_record(
    *,
    terminal: Terminal,
    type: str,
    occurred_at: datetime,
    code: str | None = None,
    message: str | None = None,
    metrics: dict | None = None,
    locked: bool = False,
) -> TerminalHealthEvent:
    """Store a health event and fold it into the terminal: last_seen_at, health summary, status.

    Events arrive out of order (terminals buffer and retry): only the newest one so far (by occurred_at) moves
    the status and the summary; an older one is stored and counted. `locked`: the caller read `terminal` with
    its row lock (`terminal_for_update`) in the transaction open (the API request is one), so it is not read
    again."""
    now = timezone.now()
    not_in_future(occurred_at, field="occurred_at", now=now)
    metrics = {k: v for k, v in (metrics or {}).items() if v is not None} or None
    if locked and not connection.in_atomic_block:
        raise RuntimeError("terminal_health_event_record(locked=True) outside the transaction of the lock")
    # No savepoint inside a caller's transaction: nothing below refuses a request (the checks are above), so an
    # error here is a failure of the whole request and rolls all of it back.
    with transaction.atomic(savepoint=False):
        if not locked:
            terminal = _lock(terminal)
        event = TerminalHealthEvent(
            operator_id=terminal.operator_id,
            terminal=terminal,
            type=type,
            occurred_at=occurred_at,
            code=code or None,
            message=message or None,
            metrics=metrics,
        )
        row_insert(event)  # as create() would, without the ORM's save machinery (every heartbeat)
        before = {name: getattr(terminal, name) for name in _HEALTH_FIELDS}
        if type == HealthEventType.ERROR:
            terminal.health_errors_24h = _errors_24h(terminal.pk, now)
        target = terminal.status
        if terminal.last_seen_at is None or occurred_at >= terminal.last_seen_at:
            terminal.last_seen_at = occurred_at
            terminal.health_last_event_type = type
            if type in (HealthEventType.ERROR, HealthEventType.TAMPER):
                terminal.health_last_error_code = code or None
            if metrics and "signal_strength_dbm" in metrics:
                terminal.health_signal_strength_dbm = metrics["signal_strength_dbm"]
            if metrics and "temperature_c" in metrics:
                terminal.health_temperature_c = metrics["temperature_c"]
            if terminal.status not in OPERATOR_HELD_STATUSES:
                target = _status_after(terminal.status, type)
        changed = tuple(name for name in _HEALTH_FIELDS if getattr(terminal, name) != before[name])
        if target != terminal.status:
            reason = ""
            if target == TerminalStatus.FAULTED:
                reason = f"{type}: {code or message or 'reported by the terminal'}"[:500]
            _change_status(terminal, target, reason, also_saved=changed)
        else:
            # updated_at moves with every event, as it always has (also for an old event that changes nothing).
            row_update(terminal, [*changed, "updated_at"])
    return event


def terminals_mark_offline(*, now: datetime | None = None) -> int:
    """The offline sweep: online or faulted terminals not seen for TERMINAL_OFFLINE_AFTER become offline,
    each with its event. Batches lock with SKIP LOCKED, so a terminal busy with a health event is left for the
    next run, and the silence is re-checked on the locked row."""
    now = now or timezone.now()
    after = settings.TERMINAL_OFFLINE_AFTER
    cutoff = now - timedelta(seconds=after)
    silent = Q(status__in=SWEPT_STATUSES) & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=cutoff))
    marked = 0
    while True:
        with transaction.atomic():
            batch = list(
                Terminal.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(silent)
                .order_by()[:SWEEP_BATCH]
            )
            for terminal in batch:
                _change_status(terminal, TerminalStatus.OFFLINE, f"Not seen for {after} seconds.")
        marked += len(batch)
        if len(batch) < SWEEP_BATCH:
            return marked


def terminals_errors_24h_refresh(*, now: datetime | None = None) -> int:
    """errors_24h only grows when an error arrives; this lets old errors fall out of the window.
    One UPDATE over the terminals whose count has changed: the others are neither rewritten nor locked (a
    heartbeat of a terminal does not wait for this job to pass every terminal with errors)."""
    now = now or timezone.now()
    recent = (
        TerminalHealthEvent.objects.filter(
            terminal_id=OuterRef("pk"), type=HealthEventType.ERROR, occurred_at__gte=now - timedelta(hours=24)
        )
        .order_by()
        .values("terminal_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    counted = Coalesce(Subquery(recent), 0)
    return (
        Terminal.objects.filter(health_errors_24h__gt=0)
        .exclude(health_errors_24h=counted)
        .update(health_errors_24h=counted)
    )


def terminal_health_events_prune(*, now: datetime | None = None) -> int:
    """Delete health events older than TERMINAL_HEALTH_RETENTION_DAYS, in batches (short transactions)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TERMINAL_HEALTH_RETENTION_DAYS)
    return prune_in_batches(TerminalHealthEvent.objects.filter(occurred_at__lt=cutoff), batch=PRUNE_BATCH)
