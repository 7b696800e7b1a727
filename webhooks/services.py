"""Webhook writes and the delivery engine.

Events and their deliveries are written in the transaction of the change (outbox); the delivery task is
enqueued on commit. A delivery is claimed under its row lock (`next_attempt_at` moved forward as a lease),
sent with no transaction open, and the outcome recorded under the lock again. `next_attempt_at` is the
durable schedule: the beat sweeper re-sends whatever is due, so a lost task message only delays a delivery.

Fairness between subscriptions (one tenant's endpoint must not delay another's):
- at most WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION attempts of one subscription are under way at once; a task
  for a subscription at its limit gives the delivery back at once (cheap), and the subscription's next waiting
  delivery is sent when one of its attempts ends;
- first attempts and retries travel on separate queues (`webhooks`, `webhooks_retry`), so a failing endpoint's
  retries never queue in front of anybody's first attempt;
- a retry is scheduled for its due time when it is recorded (a countdown), the sweeper being the safety net."""

import functools
import json
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from evpay.core.errors import InvalidState
from evpay.core.models import Operator
from evpay.core.pruning import prune_in_batches
from evpay.core.queries import db_values, execute_deferred, new_row_values
from evpay.core.transitions import transition_check
from evpay.crypto import decrypt

from . import metrics, transport
from .events import webhook_subscription_payload
from .models import (
    ALL_EVENT_TYPES,
    DELIVERY_TRANSITIONS,
    EVENT_TYPES,
    TEST_EVENT_TYPE,
    DeliveryStatus,
    DisabledReason,
    Event,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookPayload,
    WebhookSubscription,
    signing_secrets,
)
from .selectors import deliveries_due, subscription_ids_matching
from .signing import secret_generate, signature_header
from .ssrf import url_form_checked, url_resolve_checked

logger = logging.getLogger(__name__)

SECRET_ROTATION_OVERLAP = timedelta(hours=24)
RETRY_AFTER_CAP = 24 * 3600
RETRY_JITTER = 0.2
FIRST_ATTEMPT_QUEUE = "webhooks"
RETRY_QUEUE = "webhooks_retry"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def event_emit(*, operator: Operator | str, type: str, data_object: dict, extra_data: dict | None = None) -> Event:
    """Write the event of a state change and one delivery per matching active subscription. Must run inside
    the transaction that makes the change, so that the change, its event and its deliveries commit or roll
    back together. `extra_data` goes next to `object` in `data` (e.g. `previous_status`)."""
    if not connection.in_atomic_block:
        raise RuntimeError(f"event_emit({type}) outside a transaction: the event could outlive or miss its change.")
    if type not in EVENT_TYPES:
        raise ValueError(f"event_emit({type!r}): not an event type of webhooks.models.EVENT_TYPES.")
    operator_id = operator if isinstance(operator, str) else operator.pk
    event = Event(
        operator_id=operator_id,
        type=type,
        object_id=_object_id(data_object),
        data={"object": data_object, **(extra_data or {})},
    )
    if connection.vendor == "postgresql":
        _event_write_at_once(event)
    else:
        event.save(force_insert=True)
        _deliveries_create(
            event=event, subscription_ids=subscription_ids_matching(operator_id=operator_id, event_type=type)
        )
    # Every state change passes here: one log line each, with the ids needed to follow an object.
    logger.info(
        "%s %s",
        type,
        data_object.get("id"),
        extra={
            "event_id": event.id,
            "event_type": type,
            "object_id": data_object.get("id"),
            "operator_id": operator_id,
        },
    )
    return event


@functools.cache
def _event_write_statement() -> tuple[str, Any, list, list]:
    """The statement of `_event_write_at_once` and the model fields whose values it takes, built once."""
    event_fields = Event._meta.concrete_fields
    payload_fields = [f for f in WebhookPayload._meta.concrete_fields if f.name != "id"]
    # Each delivery's id, subscription and payload come from the statement, every other column from its new row.
    delivery_fields = [
        f for f in WebhookDelivery._meta.concrete_fields if f.name not in ("id", "subscription", "payload")
    ]
    quote, columns = connection.ops.quote_name, ", ".join
    sql = f"""
        WITH event AS (
            INSERT INTO {quote(Event._meta.db_table)} ({columns(quote(str(f.column)) for f in event_fields)})
            VALUES ({columns("%s" for _ in event_fields)})
        ), subscription AS (
            SELECT id FROM {quote(WebhookSubscription._meta.db_table)}
            WHERE operator_id = %s AND is_active AND (event_types @> %s::jsonb OR event_types @> %s::jsonb)
        ), payload AS (
            INSERT INTO {quote(WebhookPayload._meta.db_table)} ({columns(quote(str(f.column)) for f in payload_fields)})
            SELECT {columns("%s" for _ in payload_fields)} WHERE EXISTS (SELECT 1 FROM subscription)
            RETURNING id
        )
        INSERT INTO {quote(WebhookDelivery._meta.db_table)}
            (id, subscription_id, payload_id, {columns(quote(str(f.column)) for f in delivery_fields)})
        SELECT 'whd_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24), subscription.id, payload.id,
               {columns("%s" for _ in delivery_fields)}
        FROM subscription, payload
        RETURNING id
    """
    return sql, event_fields, payload_fields, delivery_fields


def _event_write_at_once(event: Event) -> None:
    """PostgreSQL: the event, its payload and one delivery per matching active subscription in one statement,
    one round trip whatever the number of subscriptions (the rows `_deliveries_create` makes; the tests compare
    both). The subscriptions are matched inside the statement, so one committed before it gets the event.
    Columns come from the models, so that a new column cannot be missed."""
    now = timezone.now()
    sql, event_fields, payload_fields, delivery_fields = _event_write_statement()
    params = [
        *db_values(event, event_fields),
        event.operator_id,
        json.dumps(event.type),  # a JSON string: `@>` matches it as an element of the array
        json.dumps(ALL_EVENT_TYPES),
        # The payload's and the deliveries' rows, as WebhookPayload(...) and WebhookDelivery(...) would write them.
        *new_row_values(
            payload_fields, {"event_id": event.id, "body": _payload_body(event), "created_at": event.created_at}
        ),
        *new_row_values(
            delivery_fields,
            {
                "operator_id": event.operator_id,
                "event_id": event.id,
                "event_type": event.type,
                "next_attempt_at": now,
                "enqueued_at": now,
            },
        ),
    ]
    # Deferred: it travels with the transaction's next statement or its COMMIT (evpay.core.queries), and the
    # deliveries it made are enqueued once the transaction has committed.
    execute_deferred(sql, params, on_result=_enqueue_on_commit)
    event._state.adding = False


def _enqueue_on_commit(cursor: Any) -> None:
    ids = [row[0] for row in cursor.fetchall()]
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))


def _object_id(data_object: dict) -> str:
    return str(data_object.get("id") or "")[:64]


def _payload_body(event: Event) -> str:
    return json.dumps(
        {"id": event.id, "type": event.type, "timestamp": _iso(event.created_at), "data": event.data},
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )


def _deliveries_create(
    *, event: Event, subscription_ids: list[str], payload: WebhookPayload | None = None
) -> list[WebhookDelivery]:
    if not subscription_ids:
        return []
    if payload is None:
        payload = WebhookPayload.objects.create(event=event, body=_payload_body(event), created_at=event.created_at)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                operator_id=event.operator_id,
                subscription_id=subscription_id,
                event=event,
                payload=payload,
                event_type=event.type,
                next_attempt_at=now,
                enqueued_at=now,
            )
            for subscription_id in subscription_ids
        ]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))
    return deliveries


def _enqueue(delivery_ids: list[str], *, queue: str = FIRST_ATTEMPT_QUEUE, countdown: float | None = None) -> None:
    """Runs after commit. A broker that is down must not fail the request: the sweeper sends these later."""
    from .tasks import deliver

    # One producer for the lot; no declaration (the message goes to the queue's own list, the anonymous
    # exchange: nothing to bind, and the worker declares what it consumes); the id as the message's argument
    # repr, instead of Celery's saferepr of the arguments. Together a third of the publish's cost.
    delivery_id = None
    try:
        with deliver.app.producer_or_acquire() as producer:
            for delivery_id in delivery_ids:
                deliver.apply_async(
                    (delivery_id,),
                    queue=queue,
                    countdown=countdown,
                    producer=producer,
                    declare=[],
                    argsrepr=f"('{delivery_id}',)",
                    kwargsrepr="{}",
                )
    except Exception as exc:  # noqa: BLE001 - any broker error; the database row is the source of truth
        logger.warning("Could not enqueue webhook delivery %s (the sweeper will): %s", delivery_id, exc)


# --- Subscriptions ----------------------------------------------------------------------------------------------


def _normalize_event_types(event_types: list[str]) -> list[str]:
    return [ALL_EVENT_TYPES] if ALL_EVENT_TYPES in event_types else list(dict.fromkeys(event_types))


def webhook_subscription_create(
    *, operator: Operator, url: str, event_types: list[str], description: str = "", resolve_now: bool = True
) -> WebhookSubscription:
    """A subscription with a new secret. The URL is checked by the SSRF guard, its host resolved now (before any
    transaction) unless `resolve_now=False` (the demo seeds offline: only the URL's form is checked then). Every
    delivery resolves and checks the address again before it connects."""
    if resolve_now:
        url_resolve_checked(url)
    else:
        url_form_checked(url)
    return WebhookSubscription.objects.create(
        operator=operator,
        url=url,
        event_types=_normalize_event_types(event_types),
        description=description or "",
        secret=secret_generate(),
    )


def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    url: str,
    event_types: list[str],
    description: str | None = None,
    is_active: bool | None = None,
    rotate_secret: bool = False,
) -> WebhookSubscription:
    """Replace url and event types; `is_active` re-enables or deactivates; `rotate_secret` makes a new secret
    while the old one keeps signing for 24 h."""
    url_resolve_checked(url)
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.url = url
        subscription.event_types = _normalize_event_types(event_types)
        if description is not None:
            subscription.description = description
        if is_active is True and not subscription.is_active:
            subscription.is_active, subscription.disabled_reason, subscription.failing_since = True, None, None
        elif is_active is False and subscription.is_active:
            subscription.is_active, subscription.disabled_reason = False, DisabledReason.DEACTIVATED
        if rotate_secret:
            subscription.previous_secret = subscription.secret
            subscription.previous_secret_expires_at = timezone.now() + SECRET_ROTATION_OVERLAP
            subscription.secret = secret_generate()
        subscription.save()
    return subscription


def webhook_subscription_deactivate(*, subscription: WebhookSubscription) -> WebhookSubscription:
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.is_active or subscription.disabled_reason != DisabledReason.DEACTIVATED:
            subscription.is_active, subscription.disabled_reason = False, DisabledReason.DEACTIVATED
            subscription.save()
    return subscription


def _subscription_disable(subscription_id: str, reason: str, *, only_if: Q | None = None) -> None:
    """Within the caller's transaction: one conditional UPDATE, so of two failing deliveries only one disables
    the subscription (the second waits for the row and then finds it inactive)."""
    disabled = WebhookSubscription.objects.filter(only_if or Q(), pk=subscription_id, is_active=True).update(
        is_active=False, disabled_reason=reason, updated_at=timezone.now()
    )
    if disabled:
        logger.warning("Webhook subscription %s disabled: %s", subscription_id, reason)


def webhook_test_send(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """A `webhook.test` event delivered to this subscription only."""
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.is_active:
            raise InvalidState(
                f"Webhook subscription {subscription.id} is not active "
                f"({subscription.disabled_reason}); re-enable it with PUT is_active true."
            )
        event = Event.objects.create(
            operator_id=subscription.operator_id,
            type=TEST_EVENT_TYPE,
            object_id=subscription.pk,
            data={"object": webhook_subscription_payload(subscription)},
        )
        (delivery,) = _deliveries_create(event=event, subscription_ids=[subscription.pk])
    return delivery


# --- Events -----------------------------------------------------------------------------------------------------


def event_redeliver(*, event: Event, subscription: WebhookSubscription | None = None) -> list[WebhookDelivery]:
    """A new delivery of the same event (same body, same `webhook-id`) to `subscription`, or to every active
    subscription whose event types match the event now; a `webhook.test` event goes back only to the
    subscriptions it was sent to. 409 when there is none to send to."""
    with transaction.atomic():
        # The event row lock serialises parallel redeliveries that would both create its missing payload.
        event = Event.objects.select_for_update().get(pk=event.pk)
        if subscription is not None:
            subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
            if not subscription.is_active:
                raise InvalidState(
                    f"Webhook subscription {subscription.id} is not active ({subscription.disabled_reason}); "
                    "re-enable it with PUT is_active true."
                )
            subscription_ids = [subscription.pk]
        elif event.type == TEST_EVENT_TYPE:
            subscription_ids = list(
                WebhookSubscription.objects.filter(
                    pk__in=event.webhook_deliveries.values("subscription_id"), is_active=True
                ).values_list("pk", flat=True)
            )
        else:
            subscription_ids = subscription_ids_matching(operator_id=event.operator_id, event_type=event.type)
        if not subscription_ids:
            raise InvalidState(f"No active webhook subscription receives {event.type} events; nothing to redeliver.")
        # The payload is what earlier deliveries sent; it is made now if the event had no subscriber then.
        payload = WebhookPayload.objects.filter(event=event).first() or WebhookPayload.objects.create(
            event=event, body=_payload_body(event), created_at=event.created_at
        )
        deliveries = _deliveries_create(event=event, subscription_ids=subscription_ids, payload=payload)
    logger.info("event %s redelivered to %s", event.id, ", ".join(subscription_ids), extra={"event_id": event.id})
    return deliveries


def events_prune(*, batch: int = 2000) -> int:
    """Beat: events older than EVENT_RETENTION_DAYS, with their deliveries and payloads, in batches. An event
    with a delivery still pending is kept until that delivery is finished."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)

    def delete(ids: list[str]) -> int:
        with transaction.atomic():
            # Deliveries first: they protect the payload that the event's deletion takes with it.
            WebhookDelivery.objects.filter(event_id__in=ids).delete()
            return Event.objects.filter(pk__in=ids).delete()[1].get(Event._meta.label, 0)

    return prune_in_batches(
        Event.objects.filter(created_at__lt=cutoff).exclude(webhook_deliveries__status=DeliveryStatus.PENDING),
        batch=batch,
        delete=delete,
    )


# --- Deliveries ---------------------------------------------------------------------------------------------------


def _transition(delivery: WebhookDelivery, action: str) -> None:
    """Move a (locked) delivery along `action` (the table in webhooks.models)."""
    delivery.status = transition_check(
        DELIVERY_TRANSITIONS,
        action=action,
        status=delivery.status,
        refusal=lambda allowed_from: (
            f"Webhook delivery {delivery.id} is {delivery.status}; "
            f"only a {' or '.join(sorted(allowed_from))} delivery can {action.replace('_', ' ')}."
        ),
    )


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Admin "retry now": one more attempt at once (a failed delivery gets one, then fails again if it fails)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",)).select_related("subscription").get(pk=delivery.pk)
        )
        if not delivery.subscription.is_active:
            raise InvalidState(f"Webhook subscription {delivery.subscription_id} is not active.")
        _transition(delivery, "retry_now")
        delivery.next_attempt_at = delivery.enqueued_at = timezone.now()
        delivery.save()
        transaction.on_commit(lambda: _enqueue([delivery.pk]))
    return delivery


def _claim_lease() -> timedelta:
    # Longer than any send can take: connect + read timeouts plus draining, well within the task time limit.
    return timedelta(seconds=3 * settings.WEBHOOK_TIMEOUT + 30)


def _relaxed_durability() -> None:
    """Claims and attempt records need not wait for the WAL flush: if the database loses such a commit in a
    crash, the delivery is simply sent again, which at-least-once delivery allows. Halves the per-attempt cost.
    (The hot path folds the same setting into its statements: `_RELAXED`.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# The same as _relaxed_durability, as an expression: in a statement that runs in autocommit it covers that
# statement's own (implicit) transaction, so the setting costs no statement of its own.
_RELAXED = "set_config('synchronous_commit', 'off', true)"
_D = WebhookDelivery._meta.db_table
_S = WebhookSubscription._meta.db_table
_P = WebhookPayload._meta.db_table
_A = WebhookDeliveryAttempt._meta.db_table
_DELIVERY_COLUMNS = [str(f.column) for f in WebhookDelivery._meta.concrete_fields]
_DELIVERY_ATTNAMES = [f.attname for f in WebhookDelivery._meta.concrete_fields]


def _checked_not_searched(condition: str) -> str:
    """`condition` as a filter on the row found by its primary key, in a form the planner cannot use to find it.
    Written plainly, `status = 'pending'` next to `id = ...` lets it choose an index of pending deliveries
    (`whd_pending_due`) instead of the key whenever the statistics say that few deliveries are pending, which
    they say most of the time (nearly all are succeeded when the table is analysed); with a backlog, that plan
    reads every pending delivery for each claim and each record. A CASE is neither an index condition nor
    proof of a partial index's predicate, so the key is the only way to the row; the result is the same."""
    return f"CASE WHEN {condition} THEN true ELSE false END"


# The claim: two statements sent at once, run as one (implicit) transaction in autocommit, so one round trip
# and no BEGIN/COMMIT. The first takes the subscription's row lock, so that two workers cannot both take its
# last free slot: the UPDATE after it counts the attempts under way with a snapshot taken once the lock is held
# (one statement could not: its snapshot predates the lock). The UPDATE claims the delivery (skipped if another
# transaction holds it) if pending, due and the subscription active with a free slot, or gives it back
# (enqueued_at cleared, nothing else) when its slots are taken; what the send needs comes back with it.
_CLAIM = f"""
SELECT s.is_active, {_RELAXED} FROM {_S} s
WHERE s.id = (SELECT subscription_id FROM {_D} WHERE id = %(id)s) FOR UPDATE OF s;
UPDATE {_D} d SET
    enqueued_at = NULL,
    next_attempt_at = CASE WHEN f.full THEN d.next_attempt_at ELSE %(lease_end)s END,
    attempt_started_at = CASE WHEN f.full THEN d.attempt_started_at ELSE %(now)s END,
    updated_at = %(now)s
FROM {_S} s, {_P} p, (
    SELECT count(*) >= %(max_in_flight)s AS full FROM {_D}
    WHERE subscription_id = (SELECT subscription_id FROM {_D} WHERE id = %(id)s)
        AND status = %(pending)s AND attempt_started_at > %(lease_start)s
) f
WHERE d.id = (SELECT id FROM {_D} WHERE id = %(id)s FOR UPDATE SKIP LOCKED)
    AND {_checked_not_searched("d.status = %(pending)s AND d.next_attempt_at <= %(now)s")}
    AND s.id = d.subscription_id AND s.is_active AND p.id = d.payload_id
RETURNING f.full, d.event_id, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, p.body"""


_SECRET_PURPOSE = WebhookSubscription._meta.get_field("secret").purpose


@functools.lru_cache(maxsize=1024)
def _secret_decrypted(token: str) -> str:
    """A subscription's secret as stored (Fernet token) -> plain: the same token for every delivery of the
    subscription until the secret changes, so each worker process decrypts it once."""
    return decrypt(token, purpose=_SECRET_PURPOSE)


@contextmanager
def _autocommit_cursor() -> Iterator[CursorWrapper]:
    """A cursor for the hot path's statements, which run in autocommit. A connection that broke under them
    (a database restart) is dropped here, as atomic() drops it after a failed rollback: otherwise the worker
    process would fail every task on it until Celery recycles it (CELERY_DB_REUSE_MAX)."""
    try:
        with connection.cursor() as cursor:
            yield cursor
    except DatabaseError:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        raise


@dataclass(frozen=True)
class _Claimed:
    """What one attempt sends: read with the claim, so the send needs no more queries."""

    delivery_id: str
    event_id: str
    url: str
    secrets: list[str]
    body: bytes


def _claim(delivery_id: str) -> _Claimed | None:
    """Take a due delivery for one attempt; None if it is not due, finished or being worked on elsewhere."""
    if connection.vendor != "postgresql":
        return _claim_orm(delivery_id)
    now = timezone.now()
    params = {
        "id": delivery_id,
        "now": now,
        "lease_end": now + _claim_lease(),
        "lease_start": now - _claim_lease(),
        "max_in_flight": settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION,
        "pending": DeliveryStatus.PENDING,
    }
    with _autocommit_cursor() as cursor:
        cursor.execute(_CLAIM, params)  # client-side binding (Django's default for psycopg): two statements
        subscription_row = cursor.fetchone()
        cursor.nextset()
        row = cursor.fetchone()
    if subscription_row is None:  # no such delivery
        return None
    if not subscription_row[0]:
        return _claim_orm(delivery_id)  # subscription disabled: the delivery fails (rare)
    if row is None or row[0]:  # not claimable, or given back: sent when a slot frees (or by the sweeper)
        return None
    _, event_id, url, secret, previous_secret, previous_expires_at, body = row
    secrets = signing_secrets(
        _secret_decrypted(secret), previous_secret and _secret_decrypted(previous_secret), previous_expires_at, now
    )
    return _Claimed(delivery_id, event_id, url, secrets, body.encode())


def _claim_orm(delivery_id: str) -> _Claimed | None:
    """The claim through the ORM: a disabled subscription's delivery (and databases other than PostgreSQL)."""
    now = timezone.now()
    with transaction.atomic():
        _relaxed_durability()
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("subscription", "payload")
            .filter(pk=delivery_id)
            .first()
        )
        if (
            delivery is None
            or delivery.status != DeliveryStatus.PENDING
            or delivery.next_attempt_at is None
            or delivery.next_attempt_at > now
        ):
            return None
        if not delivery.subscription.is_active:
            _transition(delivery, "fail")
            delivery.next_attempt_at = delivery.enqueued_at = None
            delivery.last_error = f"subscription disabled ({delivery.subscription.disabled_reason})"
            delivery.save()
            return None
        if _in_flight_full(delivery.subscription_id, now):
            # Given back: sent when one of the subscription's attempts ends (or by the sweeper).
            delivery.enqueued_at = None
            delivery.save(update_fields=["enqueued_at", "updated_at"])
            return None
        delivery.next_attempt_at, delivery.enqueued_at = now + _claim_lease(), None
        delivery.attempt_started_at = now
        delivery.save(update_fields=["next_attempt_at", "enqueued_at", "attempt_started_at", "updated_at"])
    subscription = delivery.subscription
    return _Claimed(
        delivery.pk,
        delivery.event_id,
        subscription.url,
        subscription.signing_secrets(now),
        delivery.payload.body.encode(),
    )


def _in_flight(subscription_ids: list[str], now: datetime) -> QuerySet[WebhookDelivery]:
    """Attempts under way (claimed, lease not run out) of these subscriptions."""
    return WebhookDelivery.objects.filter(
        subscription_id__in=subscription_ids,
        status=DeliveryStatus.PENDING,
        attempt_started_at__gt=now - _claim_lease(),
    )


def _in_flight_full(subscription_id: str, now: datetime) -> bool:
    """Under the subscription's row lock, so that two workers cannot both take its last free slot."""
    WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).values_list("pk").first()
    return _in_flight([subscription_id], now).count() >= settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION


def _retry_delay(attempt_number: int, result: transport.SendResult) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted. A Retry-After on 429/503 is
    honoured: the wait is at least the scheduled step and at most 24 h."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1] * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if result.retry_after is not None and result.status in (429, 503):
        delay = max(delay, min(result.retry_after, RETRY_AFTER_CAP))
    return delay


def webhook_delivery_attempt(*, delivery_id: str) -> WebhookDelivery | None:
    """One attempt: claim, send (no transaction open), record. Returns the delivery, or None if not claimed."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": claimed.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets=claimed.secrets, msg_id=claimed.event_id, timestamp=timestamp, body=claimed.body
        ),
    }
    attempted_at = timezone.now()
    result = transport.post(url=claimed.url, body=claimed.body, headers=headers)
    return _record(delivery_id=claimed.delivery_id, attempted_at=attempted_at, result=result)


# A success of a delivery still pending (the usual outcome), in one round trip: under the subscription's row
# lock (as the claim: a delivery given back at the limit meanwhile is seen here and handed the slot, instead of
# waiting for the sweeper), one statement in which the delivery succeeds, its attempt is written, the
# subscription's failing streak ends, and the freed slot goes to the subscription's oldest due delivery nobody
# is sending (as _next_waiting_send does). The waiting one is never the delivery itself (a row must not be
# updated twice in one statement).
_RECORD_SUCCESS = f"""
SELECT {_RELAXED} FROM {_S}
WHERE id = (SELECT subscription_id FROM {_D} WHERE id = %(id)s) FOR UPDATE;
WITH d AS (
    UPDATE {_D} SET
        status = %(succeeded)s, attempt_count = attempt_count + 1, next_attempt_at = NULL, enqueued_at = NULL,
        attempt_started_at = NULL, last_attempt_at = %(at)s, last_response_status = %(status)s, last_error = NULL,
        updated_at = %(now)s
    WHERE id = %(id)s AND {_checked_not_searched("status = %(pending)s")}
    RETURNING {", ".join(_DELIVERY_COLUMNS)}
), attempt AS (
    INSERT INTO {_A} (delivery_id, number, at, response_status, duration_ms, error, response_body)
    SELECT id, attempt_count, %(at)s, %(status)s, %(duration_ms)s, NULL, %(body)s FROM d
), streak AS (
    UPDATE {_S} SET failing_since = NULL
    WHERE id = (SELECT subscription_id FROM d) AND failing_since IS NOT NULL
), waiting AS (
    SELECT id, attempt_count FROM {_D}
    WHERE subscription_id = (SELECT subscription_id FROM d) AND id <> %(id)s AND status = %(pending)s
        AND next_attempt_at <= %(now)s AND enqueued_at IS NULL
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
), handed AS (
    UPDATE {_D} SET enqueued_at = %(now)s FROM waiting WHERE {_D}.id = waiting.id
    RETURNING waiting.id, waiting.attempt_count
)
SELECT d.*, (SELECT id FROM handed), (SELECT attempt_count FROM handed) FROM d"""


def _record(*, delivery_id: str, attempted_at: datetime, result: transport.SendResult) -> WebhookDelivery:
    """The outcome of an attempt, under the delivery's row lock (no transaction was open during the send)."""
    if result.ok and connection.vendor == "postgresql":
        now = timezone.now()
        with _autocommit_cursor() as cursor:
            cursor.execute(
                _RECORD_SUCCESS,
                {
                    "id": delivery_id,
                    "now": now,
                    "at": attempted_at,
                    "status": result.status,
                    "duration_ms": result.duration_ms,
                    "body": result.body,
                    "pending": DeliveryStatus.PENDING,
                    "succeeded": DeliveryStatus.SUCCEEDED,
                },
            )
            cursor.nextset()
            row = cursor.fetchone()
        if row is not None:
            *values, waiting_id, waiting_attempts = row
            if waiting_id is not None:
                queue = RETRY_QUEUE if waiting_attempts else FIRST_ATTEMPT_QUEUE
                transaction.on_commit(lambda: _enqueue([waiting_id], queue=queue))
            metrics.record_attempt(outcome="succeeded", seconds=result.duration_ms / 1000)
            return WebhookDelivery.from_db(connection.alias, _DELIVERY_ATTNAMES, values)
        # Not pending any more (finished meanwhile: its lease ran out): nothing was written; the full path below.
    return _record_orm(delivery_id=delivery_id, attempted_at=attempted_at, result=result)


def _record_orm(*, delivery_id: str, attempted_at: datetime, result: transport.SendResult) -> WebhookDelivery:
    """Every outcome through the ORM: failures, retries, disabling, a delivery finished meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        _relaxed_durability()
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempt_count += 1
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            at=attempted_at,
            response_status=result.status,
            duration_ms=result.duration_ms,
            error=result.error,
            response_body=result.body,
        )
        delivery.last_attempt_at, delivery.last_response_status = attempted_at, result.status
        delivery.last_error = result.error
        if delivery.status != DeliveryStatus.PENDING:  # finished meanwhile (lease ran out): keep the record only
            delivery.save()
            return delivery
        subscriptions = WebhookSubscription.objects.filter(pk=delivery.subscription_id)
        if result.ok:
            _transition(delivery, "succeed")
            delivery.next_attempt_at = None
            subscriptions.filter(failing_since__isnull=False).update(failing_since=None)
            outcome = "succeeded"
        else:
            if result.status == 410:
                _subscription_disable(delivery.subscription_id, DisabledReason.ENDPOINT_GONE)
            else:
                subscriptions.filter(failing_since__isnull=True).update(failing_since=now)
                disable_before = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER)
                _subscription_disable(
                    delivery.subscription_id,
                    DisabledReason.TOO_MANY_FAILURES,
                    only_if=Q(failing_since__lte=disable_before),
                )
            still_active = subscriptions.filter(is_active=True).exists()
            delay = _retry_delay(delivery.attempt_count, result) if still_active else None
            if delay is None:
                _transition(delivery, "fail")
                delivery.next_attempt_at = None
                outcome = "failed"
            else:
                _transition(delivery, "retry_later")
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                outcome = "retrying"
        delivery.enqueued_at = delivery.attempt_started_at = None
        if outcome == "retrying" and delay <= settings.WEBHOOK_COUNTDOWN_MAX:
            # Sent at its due time by a scheduled task; the sweeper only steps in if that message is lost.
            delivery.enqueued_at = delivery.next_attempt_at
            transaction.on_commit(lambda: _enqueue([delivery.pk], queue=RETRY_QUEUE, countdown=delay))
        delivery.save()
        _next_waiting_send(delivery.subscription_id, now)
    metrics.record_attempt(outcome=outcome, seconds=result.duration_ms / 1000)
    return delivery


def _next_waiting_send(subscription_id: str, now: datetime) -> None:
    """An attempt of the subscription ended: its slot goes to its oldest due delivery nobody is sending. Under
    the subscription's row lock, as claims give deliveries back under it: none is given back unseen."""
    WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).values_list("pk").first()
    waiting = list(
        deliveries_due(now=now)
        .filter(subscription_id=subscription_id, enqueued_at__isnull=True)
        .select_for_update(skip_locked=True)
        .values_list("pk", "attempt_count")[:1]
    )
    if waiting:
        ((delivery_id, attempt_count),) = waiting
        WebhookDelivery.objects.filter(pk=delivery_id).update(enqueued_at=now)
        queue = RETRY_QUEUE if attempt_count else FIRST_ATTEMPT_QUEUE
        transaction.on_commit(lambda: _enqueue([delivery_id], queue=queue))


def webhook_deliveries_sweep() -> int:
    """Beat: send a task for every due delivery nobody is on. skip_locked lets several sweepers (or a sweeper
    and the workers) run at once without waiting on each other."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            deliveries_due(now=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", "subscription_id", "attempt_count")[: settings.WEBHOOK_SWEEP_BATCH]
        )
        # No more per subscription than it has free slots: a subscription with hundreds due is not flooded.
        free = {sid: settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION for _, sid, _ in due}
        for sid, busy in _in_flight(list(free), now).values_list("subscription_id").annotate(n=Count("pk")).order_by():
            free[sid] -= busy
        first: list[str] = []
        retries: list[str] = []
        for pk, sid, attempt_count in due:
            if free[sid] > 0:
                free[sid] -= 1
                (retries if attempt_count else first).append(pk)
        if first or retries:
            WebhookDelivery.objects.filter(pk__in=first + retries).update(enqueued_at=now)

            def send() -> None:
                _enqueue(first)
                _enqueue(retries, queue=RETRY_QUEUE)

            transaction.on_commit(send)
    return len(first) + len(retries)


def webhook_deliveries_prune(*, batch: int = 5000) -> int:
    """Beat: succeeded deliveries (with their attempts) and payloads nobody needs any more, after
    WEBHOOK_RETENTION_DAYS. Failed and pending ones stay for inspection."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    deleted = prune_in_batches(
        WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED, created_at__lt=cutoff), batch=batch
    )
    prune_in_batches(WebhookPayload.objects.filter(created_at__lt=cutoff, deliveries__isnull=True), batch=batch)
    return deleted
