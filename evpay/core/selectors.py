"""Reads of operators and their credentials."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from evpay.core.cache import UNREAD, SharedRowCache, invalidate_on_change

from .models import ApiKey, Operator

# Every API request looks its key up: from the shared cache (Redis), with the key's operator. A change to a key
# or its operator (revocation, deletion, a new name) reaches the next request (evpay/core/cache.py).
API_KEYS = SharedRowCache("core:api_key:v1", ttl=60)
# Writing last_used_at on every request would turn every read into a write; once a minute is plenty. It is
# written when the cached key is loaded, which the cache's ttl makes at most about once a minute per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _api_key_load(prefix: str) -> ApiKey | None:
    api_key = ApiKey.objects.select_related("operator").filter(prefix=prefix).first()
    if api_key is not None:
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
    return api_key


def api_key_for_prefix(*, prefix: str, raw: Any = UNREAD) -> ApiKey | None:
    """The key with this prefix and its operator (`api_key.operator`), or None. Whether it is usable (revoked,
    expired) and matches the secret is the caller's to check. `raw`: its cache entry's bytes, if the caller read
    them (at `API_KEYS.redis_key(prefix)`), else the cache is asked."""
    return API_KEYS.get(prefix, lambda: _api_key_load(prefix), raw=raw)


def api_key_cache_invalidation_connect() -> None:
    """Called once, from CoreConfig.ready."""
    invalidate_on_change(API_KEYS, ApiKey, lambda key: [key.prefix], uid="core-api-key")
    invalidate_on_change(
        API_KEYS,
        Operator,
        lambda operator: ApiKey.objects.filter(operator_id=operator.pk).values_list("prefix", flat=True),
        uid="core-operator",
    )
