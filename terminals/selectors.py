from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from evpay.core.models import Operator

from .models import HealthEventType, Terminal, TerminalHealthEvent, TerminalStatus

UNKNOWN = "unknown"


def _counts(queryset, field: str) -> dict[str, int]:
    rows = queryset.order_by().values(field).annotate(n=Count("*")).values_list(field, "n")
    counts: dict[str, int] = {}
    for key, n in rows:
        counts[key or UNKNOWN] = counts.get(key or UNKNOWN, 0) + n
    return counts


def terminal_stats(*, operator: Operator) -> dict:
    """Fleet statistics in four aggregate queries, whatever the fleet size (indexes: trm_operator_status_seen,
    trm_operator_vendor, trm_operator_model, the_operator_occurred)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.TERMINAL_OFFLINE_AFTER)
    terminals = Terminal.objects.filter(operator=operator)
    # COUNT(status) rather than COUNT(*) with FILTER (Django refuses the latter); status is never null and is in
    # trm_operator_status_seen with last_seen_at, so PostgreSQL can answer from that index alone.
    totals = terminals.aggregate(
        total=Count("status"),
        stale=Count("status", filter=Q(status=TerminalStatus.ONLINE)
                    & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=cutoff))),
        **{status: Count("status", filter=Q(status=status)) for status in TerminalStatus.values},
    )
    events = TerminalHealthEvent.objects.filter(operator=operator, occurred_at__gte=now - timedelta(hours=24))
    total = totals["total"]
    return {
        "total": total,
        "by_status": {status: totals[status] for status in TerminalStatus.values},
        "by_vendor": _counts(terminals, "vendor"),
        "by_model": _counts(terminals, "model"),
        "online_ratio": totals[TerminalStatus.ONLINE] / total if total else 0.0,
        "stale": totals["stale"],
        "health_events_24h": {event_type: 0 for event_type in HealthEventType.values} | _counts(events, "type"),
    }


def terminal_counts_by_status(*, operator: Operator | None = None) -> dict[str, int]:
    """Terminals per status (every status present, zeros included), for the `evpay_terminals` gauge.
    One query; all operators unless one is given."""
    queryset = Terminal.objects.all() if operator is None else Terminal.objects.filter(operator=operator)
    return {status: 0 for status in TerminalStatus.values} | _counts(queryset, "status")
