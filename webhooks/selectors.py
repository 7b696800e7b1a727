from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from .models import ALL_EVENT_TYPES, DeliveryStatus, WebhookDelivery, WebhookSubscription


def subscriptions_for_event_type(event_type: str) -> Q:
    """Subscriptions listing `event_type` or `*`. A match on the quoted JSON text, not a JSON `contains`
    lookup, because SQLite (the `make run` database) has none; the quotes make it an exact element match."""
    return Q(event_types__icontains=f'"{event_type}"') | Q(event_types__icontains=f'"{ALL_EVENT_TYPES}"')


def subscription_ids_matching(*, operator_id: str, event_type: str) -> list[str]:
    """Ids only: event_emit runs inside every state change and needs no more (loading whole rows would also
    decrypt every secret)."""
    return list(
        WebhookSubscription.objects.filter(
            subscriptions_for_event_type(event_type), operator_id=operator_id, is_active=True
        ).values_list("pk", flat=True)
    )


def deliveries_due(*, now: datetime | None = None) -> QuerySet[WebhookDelivery]:
    """Pending deliveries whose attempt is due and whose task message is not (or no longer) on its way."""
    now = now or timezone.now()
    requeue_before = now - timedelta(seconds=settings.WEBHOOK_REQUEUE_AFTER)
    return WebhookDelivery.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=requeue_before),
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at")


# A due delivery not attempted for this long means the workers or the sweeper are not keeping up.
OVERDUE_AFTER = timedelta(minutes=5)


def delivery_backlog(*, now: datetime | None = None, operator_id: str | None = None) -> dict[str, Any]:
    """Pending deliveries (of one operator, or platform-wide), the age of the oldest, and how many are overdue
    (one query)."""
    now = now or timezone.now()
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    if operator_id is not None:
        pending = pending.filter(operator_id=operator_id)
    row = pending.aggregate(
        pending=Count("pk"),
        oldest=Min("created_at"),
        overdue=Count("pk", filter=Q(next_attempt_at__lt=now - OVERDUE_AFTER)),
    )
    oldest_age = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return {"pending": row["pending"], "oldest_pending_age_s": round(oldest_age, 1), "overdue": row["overdue"]}


def delivery_backlog_by_state(*, now: datetime | None = None) -> dict[str, Any]:
    """Pending deliveries never attempted (`new`) and waiting for a retry (`retrying`), and how long the oldest
    due one has waited past its due time (metrics; one query). A delivery in flight is not due: its lease moved
    next_attempt_at forward."""
    now = now or timezone.now()
    row = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(
        new=Count("pk", filter=Q(attempt_count=0)),
        retrying=Count("pk", filter=Q(attempt_count__gt=0)),
        oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
    )
    oldest_due = max(0.0, (now - row["oldest_due"]).total_seconds()) if row["oldest_due"] else 0.0
    return {"new": row["new"], "retrying": row["retrying"], "oldest_due_age_s": round(oldest_due, 1)}


def backlog_health_component(*, operator_id: str) -> dict:
    """The `webhook_backlog` component of /health/detailed (the caller's operator): `degraded` while due
    deliveries wait too long."""
    backlog = delivery_backlog(operator_id=operator_id)
    return {"status": "degraded" if backlog["overdue"] else "ok", **backlog}


def dashboard_panels(*, operator_id: str | None, since: datetime) -> list[Any]:
    """Webhook backlog now and today's attempt failure rate (of one operator, or of all)."""
    from evpay.core.panels import Panel

    from .models import WebhookDeliveryAttempt

    deliveries = WebhookDelivery.objects.all()
    attempts = WebhookDeliveryAttempt.objects.filter(at__gte=since)
    if operator_id is not None:
        deliveries = deliveries.filter(operator_id=operator_id)
        attempts = attempts.filter(delivery__operator_id=operator_id)
    pending = deliveries.filter(status=DeliveryStatus.PENDING).count()
    today = attempts.aggregate(
        total=Count("pk"),
        failed=Count(
            "pk", filter=Q(response_status__isnull=True) | Q(response_status__lt=200) | Q(response_status__gte=300)
        ),
    )
    rate = f"{today['failed'] / today['total']:.1%}" if today["total"] else "-"
    return [
        Panel(
            "Webhooks",
            [("Pending deliveries", pending), ("Attempts today", today["total"]), ("Failure rate today", rate)],
        )
    ]
