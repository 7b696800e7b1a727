"""Production: secrets and hosts must come from the environment; JSON logs."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEVELOPMENT_SECRET_KEY, LOGGING, cache_config, env

# SECRET_KEY signs sessions and tokens and derives the keys that encrypt webhook secrets and CPMS credentials
# (evpay/crypto.py): a key anyone can read in this repository protects nothing. Refused at start.
KNOWN_SECRET_KEYS = frozenset(
    {
        DEVELOPMENT_SECRET_KEY,
        "change-me-in-a-real-deployment-0123456789",  # the Compose default of earlier versions
        "change-me",
        "replace-me-with-50-or-more-random-characters",  # .env.example
    }
)
SECRET_KEY_MIN_LENGTH = 50  # Django's own deployment check (security.W009) asks for as much


def _secret_key() -> str:
    key = env("SECRET_KEY", default="")
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if key in KNOWN_SECRET_KEYS or key.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY is a published default; set a key of your own.")
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < 5:
        raise ImproperlyConfigured(f"SECRET_KEY is too weak: use at least {SECRET_KEY_MIN_LENGTH} random characters.")
    return key


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CACHES = {"default": cache_config(env.cache("CACHE_URL", default="redis://127.0.0.1:6379/1"))}
# Persistent connections: a new PostgreSQL connection per request cost more than the request itself
# (bench/README.md). Each gunicorn worker keeps one, checked before reuse once it has been idle for
# DATABASE_HEALTH_CHECK_INTERVAL (evpay/core/backends/postgresql) and after an error. Behind PgBouncer in
# transaction mode (docker-compose.yml) they are connections to PgBouncer.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
if env("DATABASE_POOLER", default="") == "pgbouncer":
    # Transaction pooling: a named cursor would outlive the transaction it was opened in.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True  # noqa: F405
WHITENOISE_AUTOREFRESH = False  # the image runs collectstatic
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
LOGGING["handlers"]["console"]["formatter"] = env("LOG_FORMAT", default="json")  # type: ignore[index]
SIMPLE_JWT["SIGNING_KEY"] = env("JWT_SIGNING_KEY", default=SECRET_KEY)  # noqa: F405
