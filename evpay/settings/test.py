"""The test suite: real PostgreSQL and Redis on localhost."""

from .base import *  # noqa: F403
from .base import env, instrumented_database

DATABASES = {
    "default": instrumented_database(env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/evpay"))
}
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_evpay")}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/14")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
API_RATE_LIMIT = env("API_RATE_LIMIT", default="100000/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"credential": API_RATE_LIMIT}  # noqa: F405
# Webhook receivers in tests are local HTTP servers.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=True)
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=2)
# Access tests send many wrong credentials from one address; the brute-force tests set their own low limits.
AUTH_FAILURES_PER_ADDRESS = env.int("AUTH_FAILURES_PER_ADDRESS", default=10_000)
AUTH_FAILURES_PER_CREDENTIAL = env.int("AUTH_FAILURES_PER_CREDENTIAL", default=10_000)
