"""`Idempotency-Key` on every POST, scoped per operator.

The key is claimed (inserted) in its own short transaction before the view runs; the view's response
(any status below 500) is stored on it afterwards. A repeat with the same method, path and body replays
the stored response; another body or path is 422; a repeat while the first is still running is 409.
A 5xx or an unexpected exception releases the key so the client may retry.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from evpay.api.errors import PROBLEM_CONTENT_TYPE, IdempotentReplay
from evpay.core.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from evpay.core.models import IdempotencyKey

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


def idempotency_begin(request) -> IdempotencyKey | None:
    """Claims the request's key, or raises IdempotentReplay / 409 / 422. None when there is nothing to do."""
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
    while record is None:
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    operator=operator, key=key, fingerprint=fingerprint, created_at=now
                )
        except IntegrityError:
            pass
        # None when the holder released the key (a 5xx) or it was pruned since the insert failed: claim it again.
        record = IdempotencyKey.objects.filter(operator=operator, key=key).first()
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
    raise IdempotencyKeyInUse(
        "A request with this Idempotency-Key is still being processed; retry later.", headers={"Retry-After": "1"}
    )


def idempotency_finish(record: IdempotencyKey, response: Response) -> None:
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=record.pk, completed_at=None).delete()
        return
    body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    IdempotencyKey.objects.filter(pk=record.pk).update(
        response_status=response.status_code, response_body=body, completed_at=timezone.now()
    )
