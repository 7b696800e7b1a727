from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from evpay.core.models import Operator

from .models import HealthEventType, Terminal, TerminalHealthEvent, TerminalStatus

UNKNOWN = "unknown"


def _counts(queryset: QuerySet[Any], field: str) -> dict[str, int]:
    rows = queryset.order_by().values(field).annotate(n=Count("*")).values_list(field, "n")
    return {key or UNKNOWN: n for key, n in rows}


def terminal_stats(*, operator: Operator) -> dict:
    """Fleet statistics in two aggregate queries, whatever the fleet size: one pass over the operator's terminals
    grouped by (status, vendor, model), folded here (a fleet has few such combinations), and one over the last
    24 h of health events (index the_operator_occurred)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.TERMINAL_OFFLINE_AFTER)
    silent = Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=cutoff)
    groups = (
        Terminal.objects.filter(operator=operator)
        .order_by()
        .values_list("status", "vendor", "model")
        .annotate(n=Count("*"), stale=Count("status", filter=Q(status=TerminalStatus.ONLINE) & silent))
    )
    by_status = dict.fromkeys(TerminalStatus.values, 0)
    by_vendor: dict[str, int] = {}
    by_model: dict[str, int] = {}
    stale = 0
    for status, vendor, model, n, stale_in_group in groups:
        by_status[status] += n
        by_vendor[vendor or UNKNOWN] = by_vendor.get(vendor or UNKNOWN, 0) + n
        by_model[model or UNKNOWN] = by_model.get(model or UNKNOWN, 0) + n
        stale += stale_in_group
    total = sum(by_status.values())
    events = TerminalHealthEvent.objects.filter(operator=operator, occurred_at__gte=now - timedelta(hours=24))
    return {
        "total": total,
        "by_status": by_status,
        "by_vendor": by_vendor,
        "by_model": by_model,
        "online_ratio": by_status[TerminalStatus.ONLINE] / total if total else 0.0,
        "stale": stale,
        "health_events_24h": dict.fromkeys(HealthEventType.values, 0) | _counts(events, "type"),
    }


def terminal_counts_by_status(*, operator_id: str | None = None) -> dict[str, int]:
    """Terminals per status (every status present, zeros included), for the `evpay_terminals` gauge and the
    dashboard. One query; all operators unless one is given."""
    queryset = Terminal.objects.all() if operator_id is None else Terminal.objects.filter(operator_id=operator_id)
    return dict.fromkeys(TerminalStatus.values, 0) | _counts(queryset, "status")


def terminals_health_component(*, operator_id: str) -> dict:
    """The `terminals` component of /health/detailed (the caller's operator). Online terminals unseen for twice
    TERMINAL_OFFLINE_AFTER mean the minute-by-minute offline sweep is not running: `degraded`."""
    now = timezone.now()
    overdue = now - timedelta(seconds=2 * settings.TERMINAL_OFFLINE_AFTER)
    row = Terminal.objects.filter(operator_id=operator_id).aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(status=TerminalStatus.ONLINE)),
        unswept=Count(
            "pk", filter=Q(status=TerminalStatus.ONLINE) & (Q(last_seen_at__lt=overdue) | Q(last_seen_at__isnull=True))
        ),
    )
    return {"status": "degraded" if row["unswept"] else "ok", **row}


def dashboard_panels(*, operator_id: str | None, since: datetime) -> list[Any]:
    from evpay.core.panels import Panel

    return [Panel("Terminals by status", list(terminal_counts_by_status(operator_id=operator_id).items()))]
