"""Rows read on every request (API keys), kept in the shared cache (Redis). (Webhook subscriptions need no cache:
the outbox matches them inside the statement that writes the event, webhooks.services.)

A cached row must never outlive its change: a revoked API key is refused on the next request. So:

- a writer replaces the entry with a tombstone before its change commits, and again after it (model signals, see
  `invalidate_on_change`); a failure to write it before the change stops the change (`CacheUnavailable`, 503);
- readers only ever *add* what they loaded from the database (set if absent): a reader that loaded the old row
  just before the change cannot put it back over the tombstone, which outlives any request;
- entries expire after `ttl` seconds anyway.

Only a cache shared by every process is used (Redis in production and in Compose). With a per-process cache
(locmem: `make run`, most tests) another process's change could not reach it, so nothing is cached and every read
goes to the database. A cache that is down is skipped the same way, with a warning and a metric.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from prometheus_client import Counter

from evpay.core.errors import UpstreamUnavailable

logger = logging.getLogger(__name__)

SHARED_CACHE_ERRORS = Counter(
    "evpay_shared_cache_errors",
    "Reads (served from the database instead) and invalidations of cached rows that could not reach the cache.",
    ["namespace", "operation"],
)

_TOMBSTONE = "__changed__"
_TOMBSTONE_TTL = 300  # far longer than any request: see the module docstring


class CacheUnavailable(UpstreamUnavailable):
    code, title = "cache_unavailable", "Cache unavailable"


class _ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client builds a new `redis.Redis` for every cache operation, and redis-py fills ~170 response
    callbacks for each: more CPU than the round trip. One `redis.Redis` per connection pool, kept."""

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """Django's Redis cache with one `redis.Redis` per pool (settings.base.cache_config sets it)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClientRedisCacheClient


def _backend():
    backend = caches["default"]
    return backend if isinstance(backend, DjangoRedisCache) else None


#: `SharedRowCache.get(..., raw=)` default: the cache is asked.
UNREAD: Any = object()


class SharedRowCache:
    """`get(key, load)`: the cached value of `key`, else `load()` (from the database), then cached."""

    def __init__(self, namespace: str, *, ttl: int):
        self.namespace, self.ttl = namespace, ttl

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def redis_key(self, key: str) -> str | None:
        """The Redis key of `key`'s entry, for a caller that reads it in the same round trip as other work of its
        own (then `get(key, load, raw=what it read)`); None when nothing is cached (no shared cache)."""
        backend = _backend()
        return None if backend is None else backend.make_key(self._key(key))

    def get(self, key: str, load: Callable[[], Any], *, raw: Any = UNREAD) -> Any:
        """`raw`: the entry's bytes at `redis_key` as the caller already read them (None: absent; an exception if
        that read failed); by default the cache is asked."""
        backend = _backend()
        if backend is None:
            return load()
        name = self._key(key)
        try:
            if isinstance(raw, Exception):
                raise raw
            if raw is UNREAD:
                cached = backend.get(name)
            else:  # what the cache's own read would make of the bytes
                cached = None if raw is None else backend._cache._serializer.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any cache error: the database answers
            self._failed("read", exc)
            return load()
        if cached is not None and cached != _TOMBSTONE:
            return cached
        value = load()
        if cached is None and value is not None:
            try:
                backend.add(name, value, self.ttl)
            except Exception as exc:  # noqa: BLE001
                self._failed("read", exc)
        return value

    def invalidate(self, keys: Iterable[str], *, strict: bool) -> None:
        """Tombstones for `keys`. `strict`: a cache that cannot be reached raises CacheUnavailable (before a change:
        the change must not happen unseen by the cache); otherwise it is logged."""
        backend = _backend()
        names = {self._key(key): _TOMBSTONE for key in keys}
        if backend is None or not names:
            return
        try:
            backend.set_many(names, _TOMBSTONE_TTL)
        except Exception as exc:  # noqa: BLE001
            self._failed("invalidate", exc)
            if strict:
                raise CacheUnavailable(
                    f"The cache could not be reached, so this change ({self.namespace}) was not made; try again."
                ) from exc

    def _failed(self, operation: str, exc: Exception) -> None:
        SHARED_CACHE_ERRORS.labels(namespace=self.namespace, operation=operation).inc()
        logger.warning("Shared cache %s: %s failed (%s)", self.namespace, operation, exc)


def invalidate_on_change(
    cache: SharedRowCache, model: type[Model], keys: Callable[[Any], Iterable[str]], *, uid: str
) -> None:
    """Tombstone `keys(instance)` of `cache` whenever a `model` row is saved or deleted: before the write (strict)
    and once its transaction has committed. `QuerySet.update()` sends no signal: code that changes these rows
    that way calls `cache.invalidate` itself."""

    # A new row needs none: nothing was cached for it (`get` caches no absent row).
    def before(sender, instance, **kwargs):
        if kwargs.get("raw") or instance._state.adding:  # raw: loaddata
            return
        cache.invalidate(list(keys(instance)), strict=True)

    def after(sender, instance, **kwargs):
        if kwargs.get("raw") or kwargs.get("created"):
            return
        affected = list(keys(instance))
        transaction.on_commit(lambda: cache.invalidate(affected, strict=False))

    pre_save.connect(before, sender=model, weak=False, dispatch_uid=f"{uid}-pre-save")
    pre_delete.connect(before, sender=model, weak=False, dispatch_uid=f"{uid}-pre-delete")
    post_save.connect(after, sender=model, weak=False, dispatch_uid=f"{uid}-post-save")
    post_delete.connect(after, sender=model, weak=False, dispatch_uid=f"{uid}-post-delete")
