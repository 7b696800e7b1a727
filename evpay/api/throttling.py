"""Rate limits. Both kinds keep their counters in the cache; a cache that is down (Redis stopped) lets
requests through with a warning and a metric rather than failing them: the limits protect the service,
the service must not fall over with them."""

import logging
import math
import time
from typing import Any, NoReturn

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from prometheus_client import Counter
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

THROTTLE_CACHE_ERRORS = Counter(
    "evpay_throttle_cache_errors",
    "Rate-limit checks that could not reach the cache and let the request through (fail open).",
    ["limiter"],
)


def _cache_unavailable(limiter: str, exc: Exception) -> None:
    THROTTLE_CACHE_ERRORS.labels(limiter=limiter).inc()
    logger.warning("Rate limit %s not applied, cache unavailable (failing open): %s", limiter, exc)


class CredentialRateThrottle(SimpleRateThrottle):
    """One bucket per API key or user; unauthenticated requests by client address.

    A sliding window estimated from two fixed-window counters (this window's count plus the previous window's,
    weighted by how much of it still overlaps): one Redis round trip per request (INCR, EXPIRE and GET in one
    Lua script, on the cache's pooled client) and a few bytes per credential. DRF's own throttle keeps the
    timestamp of every request of the window in one pickled list, read and written back on every request: two
    round trips and, at a few thousand requests a minute, more time than the request it guards."""

    scope = "credential"

    def get_cache_key(self, request, view):
        user = request.user
        if getattr(user, "is_authenticated", False):
            ident = getattr(user, "throttle_ident", None) or user.credential_id
        else:
            ident = self.get_ident(request)
        return self.ident_key(ident)

    def ident_key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        counted = getattr(request, _COUNTED, None)
        if isinstance(counted, Exception):
            _cache_unavailable(self.scope, counted)
            return True
        if counted is not None and counted[0] == key:  # by `count_and_read`, with the credential's lookup
            _, self.elapsed, current, previous = counted
        else:
            try:
                self.elapsed, current, previous, _ = _count(key, self.duration)
            except Exception as exc:  # noqa: BLE001 - any cache backend error
                _cache_unavailable(self.scope, exc)
                return True
        estimate = current + previous * (1 - self.elapsed / self.duration)
        return estimate <= self.num_requests

    def wait(self):
        return max(1, math.ceil(self.duration - self.elapsed))


_COUNTED = "_evpay_credential_counted"


def count_and_read(request, *, ident: str, read: str) -> bytes | None | Exception:
    """The credential throttle's count for `ident`, and the value at the Redis key `read` (a credential's cache
    entry), in one round trip: an API-key request makes no other call to Redis. The counts wait on `request` for
    CredentialRateThrottle; returns the raw value (None: absent), or the exception if Redis failed (the throttle
    then fails open, and the caller reads the database).

    `ident` must say which secret was presented (its hash), not only which key it names: a request with a
    wrong secret is counted, before it is refused, in a bucket of its own, and cannot spend the key's limit."""
    throttle = CredentialRateThrottle()
    key = throttle.ident_key(ident)
    duration = int(throttle.duration)  # type: ignore[attr-defined]  # set from the rate; the caller checked there is one
    try:
        elapsed, current, previous, raw = _count(key, duration, read=read)
    except Exception as exc:  # noqa: BLE001 - any cache backend error
        setattr(request, _COUNTED, exc)
        return exc
    setattr(request, _COUNTED, (key, elapsed, current, previous))
    return raw


# Increment this window's counter (expiring two windows after its first request), read the previous window's
# and, if asked, one more key, in one command. A Lua script rather than a pipeline: redis-py builds a
# pipeline's ~170 response callbacks anew for every pipeline, which cost more CPU than the round trip it saves.
_COUNT_SCRIPT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local previous = tonumber(redis.call('GET', KEYS[2])) or 0
if KEYS[3] then return {current, previous, redis.call('GET', KEYS[3])} end
return {current, previous}
"""
_count_scripts: dict[int, Any] = {}


def _count(key: str, duration: int, *, read: str | None = None) -> tuple[float, int, int, Any]:
    """Increment the counter of `key` for this window of `duration` seconds; return the seconds elapsed in the
    window, that count and the previous window's (and the raw value at the Redis key `read`, Redis only)."""
    now = time.time()
    window = int(now // duration)
    current_key, previous_key, ttl = f"{key}:{window}", f"{key}:{window - 1}", 2 * duration
    elapsed = now - window * duration
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        current_key, previous_key = backend.make_key(current_key), backend.make_key(previous_key)
        client = backend._cache.get_client(current_key, write=True)
        script = _count_scripts.get(id(client))
        if script is None:
            script = _count_scripts[id(client)] = client.register_script(_COUNT_SCRIPT)
        keys = [current_key, previous_key] if read is None else [current_key, previous_key, read]
        current, previous, *value = script(keys=keys, args=[ttl], client=client)
        return elapsed, int(current), int(previous), (value[0] if value else None)
    backend.add(current_key, 0, ttl)
    return elapsed, backend.incr(current_key), int(backend.get(previous_key) or 0), None


# --- Failed authentication -------------------------------------------------------------------------------------
# Fixed windows of AUTH_FAILURE_WINDOW seconds, counted per client address and per credential (API-key prefix or
# username). Over the limit, a failing attempt answers 429 instead of 401. API keys and JWTs are checked first
# (their secrets cannot be guessed, so a valid one from a noisy address is served as usual); a password login is
# refused before the password is checked, so that guessing stops while the window lasts.


def _window() -> tuple[int, int]:
    window = settings.AUTH_FAILURE_WINDOW
    now = int(time.time())
    return now // window, window - now % window


def _failure_keys(address: str, credential: str | None) -> list[tuple[str, int]]:
    bucket, _ = _window()
    keys = [(f"authfail:addr:{address}:{bucket}", settings.AUTH_FAILURES_PER_ADDRESS)]
    if credential:
        keys.append((f"authfail:cred:{credential[:200]}:{bucket}", settings.AUTH_FAILURES_PER_CREDENTIAL))
    return keys


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def auth_failures_exceeded(*, address: str, credential: str | None) -> int | None:
    """Seconds until the window ends if the address or the credential is over its limit, else None."""
    keys = _failure_keys(address, credential)
    try:
        counts = cache.get_many([key for key, _ in keys])
    except Exception as exc:  # noqa: BLE001
        _cache_unavailable("auth_failures", exc)
        return None
    if any(counts.get(key, 0) >= limit for key, limit in keys):
        return _window()[1]
    return None


def auth_failure_record(*, address: str, credential: str | None) -> None:
    try:
        for key, _ in _failure_keys(address, credential):
            if not cache.add(key, 1, timeout=settings.AUTH_FAILURE_WINDOW + 1):
                cache.incr(key)
    except Exception as exc:  # noqa: BLE001
        _cache_unavailable("auth_failures", exc)


def refuse_if_throttled(*, address: str, credential: str | None) -> None:
    wait = auth_failures_exceeded(address=address, credential=credential)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail="Too many failed authentication attempts; try again later.")


def auth_failed(request, credential: str | None, exc: exceptions.APIException) -> NoReturn:
    """A failed attempt: 429 once the address or the credential has used up its failures, else count it and
    raise `exc`."""
    address = client_address(request)
    refuse_if_throttled(address=address, credential=credential)
    auth_failure_record(address=address, credential=credential)
    raise exc
