from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from infrastructure.models import Connector, StationMapping
from payments.models import PaymentIntent
from payments.selectors import IntentUse

from .models import RUNNING_STATUSES, ChargeSession, ChargeSessionStatus, StationTariff, Tariff


def tariff_for_mapping(mapping: StationMapping) -> Tariff | None:
    """The mapping's own tariff, else the operator's default. One query."""
    own = Exists(StationTariff.objects.filter(mapping_id=mapping.pk, tariff_id=OuterRef("pk")))
    return (
        Tariff.objects.filter(operator_id=mapping.operator_id)
        .filter(Q(own) | Q(is_default=True))
        .order_by(own.desc())
        .first()
    )


# --- the station-tariff seam of `infrastructure.selectors` (registered in charging.apps) -----------------------


def station_tariff_ids(mapping_ids: list[str]) -> dict[str, str]:
    """{mapping_id: tariff_id} of the mappings with a tariff of their own. One query."""
    return dict(StationTariff.objects.filter(mapping_id__in=mapping_ids).values_list("mapping_id", "tariff_id"))


def tariff_exists(operator_id: str, tariff_id: str) -> bool:
    return Tariff.objects.filter(operator_id=operator_id, pk=tariff_id).exists()


def tariff_choices(operator_id: str | None) -> list[tuple[str, str]]:
    """[(tariff_id, label)] of one operator's tariffs, or of every operator's."""
    tariffs = Tariff.objects.order_by("name", "pk")
    if operator_id is not None:
        tariffs = tariffs.filter(operator_id=operator_id)
    return [(t.pk, str(t)) for t in tariffs]


def connector_lookup(*, operator_id: str, station_id: str, connector_id: str) -> Connector | None:
    """The connector on an active, live mapping of the operator, or None."""
    return (
        Connector.objects.select_related("mapping")
        .filter(
            operator_id=operator_id,
            mapping__station_id=station_id,
            mapping__is_active=True,
            mapping__deleted_at__isnull=True,
            connector_id=connector_id,
        )
        .first()
    )


def running_sessions(mapping_ids: list[str]) -> dict[tuple[str, str], str]:
    """{(mapping_id, connector_id): "chs_..."} of sessions pending, charging or stopping. One query.
    Registered with `infrastructure.selectors` (see `charging.apps`)."""
    return {
        (m, c): s
        for m, c, s in ChargeSession.objects.filter(
            mapping_id__in=mapping_ids,
            status__in=RUNNING_STATUSES,
        ).values_list("mapping_id", "connector_id", "id")
    }


_INTENT_USES_SQL = (
    f"SELECT payment_intent_id, id, status FROM {ChargeSession._meta.db_table} WHERE payment_intent_id IN "
)


# The same, as a column of a payment intent query (the seam's `session_id_column`); the index of the one-to-one
# field makes it one index probe.
INTENT_SESSION_ID_COLUMN = (
    f'(SELECT "id" FROM "{ChargeSession._meta.db_table}" '
    f'WHERE "payment_intent_id" = "{PaymentIntent._meta.db_table}"."id")'
)


def intent_uses(intent_ids: list[str]) -> dict[str, IntentUse]:
    """The charge sessions paying with these intents (the seam of `payments.selectors`). One query, in plain SQL:
    every payment intent the API shows asks it, and compiling the queryset cost more than running it."""
    if not intent_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_INTENT_USES_SQL + f"({', '.join(['%s'] * len(intent_ids))})", list(intent_ids))
        rows = cursor.fetchall()
    return {
        intent_id: IntentUse(session_id=session_id, status=status, running=status in RUNNING_STATUSES)
        for intent_id, session_id, status in rows
    }


def active_session_count(operator_id: str | None = None) -> int:
    """Sessions running now (pending, charging, stopping), of one operator or of all."""
    sessions = ChargeSession.objects.filter(status__in=RUNNING_STATUSES)
    if operator_id:
        sessions = sessions.filter(operator_id=operator_id)
    return sessions.count()


def sessions_pending_past_start_timeout(*, limit: int = 500) -> list[ChargeSession]:
    cutoff = timezone.now() - timedelta(seconds=settings.CHARGE_START_TIMEOUT)
    return list(
        ChargeSession.objects.filter(status=ChargeSessionStatus.PENDING, created_at__lt=cutoff).order_by("created_at")[
            :limit
        ]
    )


def sessions_stale(*, limit: int = 500) -> list[ChargeSession]:
    """Charging or stopping sessions whose `last_seen` (the last reading, or the start when that is later: a
    reading may predate the CPMS's acceptance) is older than CHARGE_STALE_AFTER."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHARGE_STALE_AFTER)
    # Coalesce inside: GREATEST is NULL when an argument is, on SQLite.
    last_seen = Greatest(Coalesce("last_progress_at", "started_at"), "started_at")
    return list(
        ChargeSession.objects.filter(status__in=[ChargeSessionStatus.CHARGING, ChargeSessionStatus.STOPPING])
        .annotate(last_seen=last_seen)
        .filter(last_seen__lt=cutoff)
        .order_by("last_seen")[:limit]
    )


def dashboard_panels(*, operator_id: str | None, since: datetime) -> list:
    """Sessions running now, and today's sessions by outcome."""
    from evpay.core.panels import Panel

    sessions = ChargeSession.objects.all()
    if operator_id:
        sessions = sessions.filter(operator_id=operator_id)
    today = sessions.filter(created_at__gte=since).aggregate(
        started=Count("id"),
        completed=Count("id", filter=Q(status=ChargeSessionStatus.COMPLETED)),
        failed=Count("id", filter=Q(status=ChargeSessionStatus.FAILED)),
    )
    return [
        Panel(
            "Charging sessions",
            [
                ("Active now", active_session_count(operator_id)),
                ("Started today", today["started"]),
                ("Completed today", today["completed"]),
                ("Failed today", today["failed"]),
            ],
        )
    ]


#: A session past its timeout by more than this is stuck: the beat jobs (every 30 s / 1 min) should have ended it.
OVERDUE_GRACE = timedelta(minutes=5)


def session_counts_overdue() -> dict[str, int]:
    """Running sessions the timeout jobs should have ended long ago, per running status (metrics; one query):
    pending past CHARGE_START_TIMEOUT, charging/stopping without a reading for CHARGE_STALE_AFTER."""
    now = timezone.now()
    start_cutoff = now - timedelta(seconds=settings.CHARGE_START_TIMEOUT) - OVERDUE_GRACE
    stale_cutoff = now - timedelta(seconds=settings.CHARGE_STALE_AFTER) - OVERDUE_GRACE
    S = ChargeSessionStatus
    return (
        ChargeSession.objects.filter(status__in=RUNNING_STATUSES)
        .annotate(last_seen=Greatest(Coalesce("last_progress_at", "started_at"), "started_at"))
        .aggregate(
            **{
                S.PENDING: Count("pk", filter=Q(status=S.PENDING, created_at__lt=start_cutoff)),
                S.CHARGING: Count("pk", filter=Q(status=S.CHARGING, last_seen__lt=stale_cutoff)),
                S.STOPPING: Count("pk", filter=Q(status=S.STOPPING, last_seen__lt=stale_cutoff)),
            }
        )
    )


def session_counts_by_running_status() -> dict[str, int]:
    """Running sessions of every operator per running status (zeros included). One query."""
    counts: dict[str, int] = dict.fromkeys(RUNNING_STATUSES, 0)
    counts.update(
        ChargeSession.objects.filter(status__in=RUNNING_STATUSES)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return counts
