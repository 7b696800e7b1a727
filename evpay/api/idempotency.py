"""`Idempotency-Key` on every POST, scoped per operator.

A repeat with the same method, path and body replays the stored response (any status below 500); another
body or path is 422; a repeat while the first is still running is 409. A 5xx or an unexpected exception
releases the key so the client may retry. Two ways to keep the key, same rules:

- Deferred (`single_commit_actions` of a view, PostgreSQL): the whole request is one transaction. The key is
  guarded by a transaction-level advisory lock (a second request with it while the first runs gets 409 at
  once, without waiting), and inserted with the response just before the one commit of the request.
- Claimed: for requests that call out (processor, CPMS) between their writes, the key is inserted before the
  view runs by one statement that commits at once (`INSERT ... ON CONFLICT DO NOTHING`: a repeat finds the row
  and gets 409 while it is in progress), and the response stored afterwards.
"""

import hashlib
import json
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.response import Response

from evpay.api.errors import PROBLEM_CONTENT_TYPE, IdempotentReplay
from evpay.api.renderers import JSONRenderer
from evpay.core.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from evpay.core.models import IdempotencyKey
from evpay.core.queries import execute_deferred

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"


def _fingerprint(request) -> str:
    raw = request._request.body or b""
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.rstrip("/").encode(), body):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


def _replay(record: IdempotencyKey) -> Response:
    status = record.response_status
    return Response(
        record.response_body,
        status=status,
        headers={REPLAY_HEADER: "true"},
        content_type=PROBLEM_CONTENT_TYPE if (status or 0) >= 400 else None,
    )


def _lock_key(operator_id: str, key: str) -> list[bool]:
    """Take the transaction-level advisory lock of (operator, key). The answer, `[False]` if another transaction
    holds it, is there once the next statement has run: the lock is deferred (evpay.core.queries) and travels
    with the lookup, which runs after it in the same message with a snapshot of its own."""
    taken = [True]
    if connection.vendor == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(f"{operator_id}\x00{key}".encode()).digest()[:8], "big", signed=True)
        execute_deferred(
            "SELECT pg_try_advisory_xact_lock(%s)",
            [lock_id],
            on_result=lambda cursor: taken.__setitem__(0, cursor.fetchone()[0]),
        )
    return taken


_FIND_SQL = (
    "SELECT id, fingerprint, response_status, CAST(response_body AS TEXT), created_at, completed_at "
    f"FROM {IdempotencyKey._meta.db_table} WHERE operator_id = %s AND key = %s"
)


def _record_find(operator, key: str) -> IdempotencyKey | None:
    """The stored key, in a statement of its own after the lock (a statement's snapshot is taken when it starts:
    one that took the lock and read the row together could miss a holder's commit made just before the lock).
    Plain SQL: every write request with a key runs it, and the ORM's compiling cost more than the query."""
    with connection.cursor() as cursor:
        cursor.execute(_FIND_SQL, [operator.pk, key])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, fingerprint, status, body, created_at, completed_at = row
    record = IdempotencyKey(
        id=pk,
        operator=operator,
        key=key,
        fingerprint=fingerprint,
        response_status=status,
        response_body=orjson.loads(body) if body is not None else None,
        created_at=created_at,
        completed_at=completed_at,
    )
    record._state.adding = False
    return record


_CLAIM_SQL = (
    f"INSERT INTO {IdempotencyKey._meta.db_table} (operator_id, key, fingerprint, created_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (operator_id, key) DO NOTHING RETURNING id"
)


def _record_claim(operator, key: str, fingerprint: str, now) -> IdempotencyKey | None:
    """Insert the key, in progress, in one statement that commits at once; None if the key exists (then read it).
    A holder's row is committed before its request runs, so a repeat conflicts with it at once; it waits only
    for a one-statement claim, or for the commit of a request that keeps its key deferred."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [operator.pk, key, fingerprint, now])
        row = cursor.fetchone()
    if row is None:
        return None
    record = IdempotencyKey(id=row[0], operator=operator, key=key, fingerprint=fingerprint, created_at=now)
    record._state.adding = False
    return record


def _in_use() -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(
        "A request with this Idempotency-Key is still being processed; retry later.", headers={"Retry-After": "1"}
    )


def idempotency_begin(request, *, deferred: bool = False) -> IdempotencyKey | None:
    """Claims the request's key, or raises IdempotentReplay / 409 / 422. None when there is nothing to do.
    `deferred`: inside the request's one transaction; the key is returned unsaved and inserted by
    `idempotency_finish` with the response."""
    key = request.headers.get(HEADER)
    operator = getattr(request.user, "operator", None)
    if request.method != "POST" or key is None or operator is None:
        return None
    if not 1 <= len(key) <= 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 characters.", errors={HEADER: ["Must be 1 to 255 characters."]}
        )
    fingerprint = _fingerprint(request)
    now = timezone.now()
    record = None
    if deferred:
        lock = _lock_key(operator.pk, key)
        record = _record_find(operator, key)
        if not lock[0]:
            raise _in_use()
        if record is None:
            return IdempotencyKey(operator=operator, key=key, fingerprint=fingerprint, created_at=now)
    while record is None:
        claimed = _record_claim(operator, key, fingerprint, now)
        if claimed is not None:
            return claimed
        # None when the holder released the key (a 5xx) or it was pruned since the insert failed: claim it again.
        record = _record_find(operator, key)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with another request body or path.",
        )
    if record.completed_at is not None:
        raise IdempotentReplay(_replay(record))
    stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT)
    if record.created_at < stale_before:
        # The first request died without finishing; the first repeat to get here takes the key over.
        taken = IdempotencyKey.objects.filter(pk=record.pk, completed_at=None, created_at=record.created_at).update(
            created_at=now
        )
        if taken:
            record.created_at = now
            return record
    raise _in_use()


_INSERT_SQL = (
    f"INSERT INTO {IdempotencyKey._meta.db_table} "
    "(operator_id, key, fingerprint, response_status, response_body, created_at, completed_at) "
    "VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)"
)


def idempotency_finish(record: IdempotencyKey, response: Response) -> None:
    if record._state.adding:  # deferred: nothing is stored yet, and a 5xx stores nothing
        if response.status_code < 500:  # deferred: it travels with the request's COMMIT
            execute_deferred(
                _INSERT_SQL,
                [
                    record.operator_id,
                    record.key,
                    record.fingerprint,
                    response.status_code,
                    _stored_json(response),
                    record.created_at,
                    timezone.now(),
                ],
            )
        return
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=record.pk, completed_at=None).delete()
        return
    body = _stored_json(response)
    IdempotencyKey.objects.filter(pk=record.pk).update(
        response_status=response.status_code,
        response_body=orjson.loads(body) if body is not None else None,
        completed_at=timezone.now(),
    )


def _stored_json(response: Response) -> str | None:
    """The response body as the client gets it: rendered here, once (the response keeps what was rendered and
    sends it), so that a replay sends the same JSON."""
    if response.data is None:
        return None
    if not getattr(response, "accepted_renderer", None):  # a replay or a response made outside a view
        return JSONRenderer().render(response.data).decode()
    return response.render().content.decode()
