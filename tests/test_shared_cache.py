"""API keys from the shared cache (Redis): cached after the first request, and never served after a change."""

import os
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework.test import APIClient

from evpay.core import cache as shared
from evpay.core.models import ApiKey, Operator
from evpay.core.selectors import API_KEYS, api_key_for_prefix
from evpay.core.services import api_key_create, api_key_revoke
from tests.base import assert_problem

URL = "/v1/payment-intents"
REDIS = os.environ.get("TEST_CACHE_REDIS", "redis://127.0.0.1:6379/13")


def _redis_cache(location: str = REDIS) -> dict:
    # A prefix of its own: parallel test runs on one Redis never see each other's entries.
    return {"default": {"BACKEND": "evpay.core.cache.RedisCache", "LOCATION": location, "KEY_PREFIX": uuid.uuid4().hex}}


@pytest.fixture
def redis_cache(shared_cache):
    return None


def _key_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return sum('"core_apikey"' in q["sql"] for q in captured.captured_queries)


@pytest.mark.django_db
class TestApiKeysInTheSharedCache:
    def test_the_key_is_read_from_the_database_once(self, redis_cache, client):
        assert _key_queries(client) == 2  # the lookup, and last_used_at written (at most once a minute)
        assert _key_queries(client) == 0
        assert _key_queries(client) == 0

    def test_revocation_acts_on_the_next_request(self, redis_cache, client, operator):
        assert client.get(URL).status_code == 200
        assert _key_queries(client) == 0  # cached
        api_key_revoke(api_key=ApiKey.objects.get(operator=operator))
        assert_problem(client.get(URL), 401, "authentication_failed")
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_a_deleted_key_is_refused_on_the_next_request(self, redis_cache, client, operator):
        assert client.get(URL).status_code == 200
        ApiKey.objects.get(operator=operator).delete()
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_a_deleted_operator_takes_its_cached_keys_along(self, redis_cache, operator):
        other = Operator.objects.create(name="Short-lived")
        _, raw = api_key_create(operator=other, scopes=["*"])
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        assert client.get(URL).status_code == 200
        other.delete()
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_an_operator_change_reaches_the_cached_key(self, redis_cache, client, operator):
        prefix = client.raw_key.split("_")[1]
        assert client.get(URL).status_code == 200
        assert api_key_for_prefix(prefix=prefix).operator.name == operator.name
        operator.name = "Renamed operator"
        operator.save()
        assert api_key_for_prefix(prefix=prefix).operator.name == "Renamed operator"

    def test_a_reader_that_loaded_the_old_row_cannot_cache_it_over_the_change(self, redis_cache, client, operator):
        """The race the tombstone is for: a request loads the key, the key is revoked and the change commits, and
        only then does the request put what it loaded into the cache."""
        prefix = client.raw_key.split("_")[1]
        key = ApiKey.objects.get(operator=operator)

        def load_then_revoke():
            loaded = ApiKey.objects.select_related("operator").get(pk=key.pk)
            api_key_revoke(api_key=key)
            return loaded

        stale = API_KEYS.get(prefix, load_then_revoke)
        assert stale.revoked_at is None  # what that request saw
        assert api_key_for_prefix(prefix=prefix).revoked_at is not None  # what every later one sees
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_a_cache_that_is_down_is_skipped_by_readers(self, client, operator):
        with override_settings(CACHES=_redis_cache("redis://127.0.0.1:1/0")):
            before = shared.SHARED_CACHE_ERRORS.labels(namespace=API_KEYS.namespace, operation="read")._value.get()
            assert client.get(URL).status_code == 200
            assert (
                shared.SHARED_CACHE_ERRORS.labels(namespace=API_KEYS.namespace, operation="read")._value.get() > before
            )

    def test_a_change_the_cache_cannot_hear_of_is_not_made(self, client, operator):
        """A revocation that could not tombstone the cached key would leave it working: it is refused instead."""
        key = ApiKey.objects.get(operator=operator)
        with override_settings(CACHES=_redis_cache("redis://127.0.0.1:1/0")):
            with pytest.raises(shared.CacheUnavailable):
                api_key_revoke(api_key=key)
        key.refresh_from_db()
        assert key.revoked_at is None

    def test_without_a_shared_cache_nothing_is_cached(self, client):
        # locmem (make run, most tests) is per process: another process's change could not reach it.
        locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}}
        with override_settings(CACHES=locmem):
            assert _key_queries(client) >= 1
            assert _key_queries(client) == 1


@pytest.fixture
def redis_calls(monkeypatch):
    """The commands this process sends to Redis, by name."""
    import redis

    sent: list[str] = []
    original = redis.Redis.execute_command

    def counted(self, *args, **options):
        sent.append(str(args[0]))
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    return sent


@pytest.fixture
def limit_of_three():
    from evpay.api.throttling import CredentialRateThrottle

    original = CredentialRateThrottle.THROTTLE_RATES
    CredentialRateThrottle.THROTTLE_RATES = {"credential": "3/min"}
    yield
    CredentialRateThrottle.THROTTLE_RATES = original


@pytest.mark.django_db
class TestKeyAndRateLimitInOneRoundTrip:
    def test_a_request_with_a_cached_key_makes_one_call_to_redis(self, redis_cache, client, redis_calls):
        assert client.get(URL).status_code == 200  # the key loaded from the database, then cached
        redis_calls.clear()
        assert client.get(URL).status_code == 200
        assert redis_calls == ["EVALSHA"]

    def test_the_rate_limit_holds(self, redis_cache, client, make_client, operator, limit_of_three):
        assert [client.get(URL).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert_problem(client.get(URL), 429, "rate_limited")
        assert make_client(operator).get(URL).status_code == 200  # another key: a bucket of its own

    def test_wrong_secrets_for_a_key_do_not_spend_its_limit(self, redis_cache, client, limit_of_three):
        prefix = client.raw_key.split("_")[1]
        forger = APIClient(HTTP_X_API_KEY=f"evp_{prefix}_not-the-secret")
        assert [forger.get(URL).status_code for _ in range(4)] == [401] * 4
        assert [client.get(URL).status_code for _ in range(4)] == [200, 200, 200, 429]

    def test_a_key_revoked_after_it_was_cached_is_refused_on_the_next_request(
        self, redis_cache, client, operator, redis_calls
    ):
        assert client.get(URL).status_code == 200
        api_key_revoke(api_key=ApiKey.objects.get(prefix=client.raw_key.split("_")[1]))
        redis_calls.clear()
        assert_problem(client.get(URL), 401, "authentication_failed")
        assert redis_calls[0] == "EVALSHA"  # read with the count: the tombstone, then the database

    def test_an_entry_that_cannot_be_read_sends_the_lookup_to_the_database(self, redis_cache, client):
        from django.core.cache import cache

        assert client.get(URL).status_code == 200
        name = API_KEYS.redis_key(client.raw_key.split("_")[1])
        cache._cache.get_client(name, write=True).set(name, b"\x80not a pickle")
        before = shared.SHARED_CACHE_ERRORS.labels(namespace=API_KEYS.namespace, operation="read")._value.get()
        assert _key_queries(client) >= 1  # answered, from the database
        assert shared.SHARED_CACHE_ERRORS.labels(namespace=API_KEYS.namespace, operation="read")._value.get() > before

    def test_redis_down_fails_open_and_the_database_answers(self, client):
        from evpay.api.throttling import THROTTLE_CACHE_ERRORS

        dead = _redis_cache("redis://127.0.0.1:1/0")
        dead["default"]["OPTIONS"] = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        before = THROTTLE_CACHE_ERRORS.labels(limiter="credential")._value.get()
        with override_settings(CACHES=dead):
            assert client.get(URL).status_code == 200
            assert_problem(APIClient(HTTP_X_API_KEY=client.raw_key + "x").get(URL), 401, "authentication_failed")
        assert THROTTLE_CACHE_ERRORS.labels(limiter="credential")._value.get() == before + 1  # once, for the 200
