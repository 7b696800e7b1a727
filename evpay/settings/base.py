"""Settings shared by every environment. Everything that varies is read from the environment."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# The development default; production refuses it (and every other known key): see settings/production.py.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
EVPAY_VERSION = env("EVPAY_VERSION", default="0.1.0")

INSTALLED_APPS = [
    "evpay.apps.EvpayAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "evpay.core",
    "payments",
    "charging",
    "terminals",
    "webhooks",
    "infrastructure",
]

MIDDLEWARE = [
    "evpay.middleware.RequestMetricsMiddleware",
    "evpay.middleware.RequestIdMiddleware",
    "evpay.middleware.BodySizeLimitMiddleware",
    "evpay.middleware.ApiProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, CSRF, the session user and messages serve the admin; API paths skip them (evpay.middleware).
    "evpay.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "evpay.middleware.BrowserCsrfViewMiddleware",
    "evpay.middleware.BrowserAuthenticationMiddleware",
    "evpay.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "evpay.urls"
WSGI_APPLICATION = "evpay.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evpay" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Django's backends wrapped by django-prometheus (django_db_* metrics: queries, errors, latency, connections).
_PROMETHEUS_DB_ENGINES = {
    # django-prometheus's, with the health check at most once a second (the module says why).
    "django.db.backends.postgresql": "evpay.core.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def instrumented_database(config: dict) -> dict:
    """The database settings of DATABASE_URL with its engine swapped for django-prometheus's equivalent."""
    config["ENGINE"] = _PROMETHEUS_DB_ENGINES.get(config["ENGINE"], config["ENGINE"])
    return config


DATABASES = {"default": instrumented_database(env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# With CONN_HEALTH_CHECKS: a persistent connection is checked before use at most once per this many seconds (so
# always after it sat idle that long); in between it is trusted (evpay/core/backends/postgresql/base.py).
DATABASE_HEALTH_CHECK_INTERVAL = env.float("DATABASE_HEALTH_CHECK_INTERVAL", default=1.0)
if DATABASES["default"]["ENGINE"].endswith(".sqlite3"):
    # Web, worker and beat share one file. WAL lets readers go on beside the one writer; IMMEDIATE takes the
    # write lock when a transaction begins, so that a transaction never has to upgrade a read lock (SQLite
    # answers such an upgrade with "database is locked" at once, without waiting for `timeout`).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache_config(config: dict) -> dict:
    """The cache of CACHE_URL; Django's Redis backend is swapped for evpay.core.cache.RedisCache (the same, with
    its Redis client built once instead of once per cache operation)."""
    if config.get("BACKEND") == "django.core.cache.backends.redis.RedisCache":
        config["BACKEND"] = "evpay.core.cache.RedisCache"
    return config


CACHES = {"default": cache_config(env.cache("CACHE_URL", default="locmemcache://"))}

AUTH_USER_MODEL = "core.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["evpay.formats"]  # the admin's times with seconds and zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Development and tests serve admin and API-docs assets straight from the apps (no collectstatic step).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=True)

# --- API ------------------------------------------------------------------------------------------
API_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_RATE_LIMIT = env("API_RATE_LIMIT", default="6000/min")
IDEMPOTENCY_KEY_TTL = env.int("IDEMPOTENCY_KEY_TTL", default=48 * 3600)
# A request that claimed a key and then died leaves it "in progress"; after this long it can be reclaimed.
IDEMPOTENCY_LOCK_TIMEOUT = env.int("IDEMPOTENCY_LOCK_TIMEOUT", default=120)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evpay.api.authentication.ApiKeyAuthentication",
        "evpay.api.authentication.OperatorJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["evpay.api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["evpay.api.throttling.CredentialRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"credential": API_RATE_LIMIT},
    "DEFAULT_PAGINATION_CLASS": "evpay.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": ["evpay.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["evpay.api.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "evpay.api.schema.EvpayAutoSchema",
    "EXCEPTION_HANDLER": "evpay.api.errors.problem_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TTL", default=900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TTL", default=86400)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default=SECRET_KEY),
    # Tokens carry a hash of the password hash: a password change ends every token issued before it.
    "CHECK_REVOKE_TOKEN": True,
}
# Failed authentication (wrong password, API key or token), per window of AUTH_FAILURE_WINDOW seconds: a
# client address gets AUTH_FAILURES_PER_ADDRESS failures, a username or key prefix AUTH_FAILURES_PER_CREDENTIAL,
# then 429 `rate_limited` with Retry-After until the window ends.
AUTH_FAILURE_WINDOW = env.int("AUTH_FAILURE_WINDOW", default=300)
AUTH_FAILURES_PER_ADDRESS = env.int("AUTH_FAILURES_PER_ADDRESS", default=100)
AUTH_FAILURES_PER_CREDENTIAL = env.int("AUTH_FAILURES_PER_CREDENTIAL", default=10)

SPECTACULAR_SETTINGS = {
    "TITLE": "evpay API",
    # The schema's description is the API guide, docs/api-guide.md (set by evpay.api.docs.document).
    "DESCRIPTION": "",
    "VERSION": EVPAY_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "VoidReasonEnum": "payments.models.VoidReason",
        "RefundReasonEnum": "payments.models.RefundReason",
        "HealthEventTypeEnum": "terminals.models.HealthEventType",
        # pending | succeeded | failed: webhook deliveries and CPMS connectivity tests share the value set.
        "OutcomeStatusEnum": "webhooks.models.DeliveryStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "evpay.api.schema.strip_trailing_slashes",
        # The guide (docs/api-guide.md), tags, summaries, descriptions and examples (evpay/api/docs.py).
        "evpay.api.docs.document",
    ],
    # Swagger UI and ReDoc from the pinned drf-spectacular-sidecar package: the docs work with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "displayOperationId": False},
}

# --- Payments -------------------------------------------------------------------------------------
PAYMENT_AUTHORIZATION_TTL = env.int("PAYMENT_AUTHORIZATION_TTL", default=7 * 24 * 3600)
# simulator | stripe: the processor of new intents (an unknown name stops the service at start-up).
PAYMENT_PROCESSOR = env("PAYMENT_PROCESSOR", default="simulator")
# The stripe processor: the platform's secret key (an operator's own key, set in the admin, overrides it), the
# API base (tests point it at a local Stripe-compatible server), per-request time-out and SDK retries.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_TIMEOUT = env.float("STRIPE_TIMEOUT", default=10)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=1)
# A processor call that claimed an intent and never recorded its result (a crash) frees the intent after this.
# The simulator's capture/void fail for the operations listed here (tests of retry paths).
PAYMENT_SIMULATOR_FAIL = env.list("PAYMENT_SIMULATOR_FAIL", default=[])
PAYMENT_PROCESSOR_CLAIM_TIMEOUT = env.int("PAYMENT_PROCESSOR_CLAIM_TIMEOUT", default=60)

# --- Terminals ------------------------------------------------------------------------------------
# Online or faulted terminals not seen for this many seconds are turned offline by the beat sweep.
TERMINAL_OFFLINE_AFTER = env.int("TERMINAL_OFFLINE_AFTER", default=300)
TERMINAL_HEALTH_RETENTION_DAYS = env.int("TERMINAL_HEALTH_RETENTION_DAYS", default=30)

# --- Charging infrastructure (CPMS adapters) ------------------------------------------------------
# Adapter type enabled for a new operator (its AdapterConfig is created on first use).
CPMS_DEFAULT_ADAPTER = env("CPMS_DEFAULT_ADAPTER", default="simulator")
# Circuit breaker, per operator and adapter type: opens after this many consecutive failed calls, lets one
# trial call through after CPMS_CIRCUIT_RESET_TIMEOUT seconds.
CPMS_CIRCUIT_FAILURE_THRESHOLD = env.int("CPMS_CIRCUIT_FAILURE_THRESHOLD", default=5)
CPMS_CIRCUIT_RESET_TIMEOUT = env.int("CPMS_CIRCUIT_RESET_TIMEOUT", default=30)
# First retry delay in seconds (doubles per attempt, at most 2 s); attempts come from the adapter config.
CPMS_RETRY_BACKOFF = env.float("CPMS_RETRY_BACKOFF", default=0.2)
# Per-call records behind the 5-minute health figures are kept this long (seconds), then pruned.
CPMS_CALL_RETENTION = env.int("CPMS_CALL_RETENTION", default=24 * 3600)
# Health: `degraded` when the 5-minute error rate reaches this (0-1).
CPMS_DEGRADED_ERROR_RATE = env.float("CPMS_DEGRADED_ERROR_RATE", default=0.2)
# `fail` or `timeout` makes every simulator call fail that way (see README, "CPMS simulator").
CPMS_SIMULATOR_MODE = env("CPMS_SIMULATOR_MODE", default="")
# The address CPMSs reach this service at (scheme, host, optional path prefix; no trailing slash): OCPI CPOs
# are given `<PUBLIC_BASE_URL>/ocpi/versions` in the credentials handshake and call our OCPI endpoints there.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Where OCPI CPOs post the asynchronous CommandResult of our START_SESSION/STOP_SESSION commands (our commands
# receiver; `/<command>/<session id>` is appended).
CPMS_OCPI_RESPONSE_URL = env("CPMS_OCPI_RESPONSE_URL", default=f"{PUBLIC_BASE_URL}/ocpi/2.2.1/commands")
# OCPI party identity sent with commands (the eMSP side).
CPMS_OCPI_COUNTRY_CODE = env("CPMS_OCPI_COUNTRY_CODE", default="DE")
CPMS_OCPI_PARTY_ID = env("CPMS_OCPI_PARTY_ID", default="EVP")

# --- Charging sessions ----------------------------------------------------------------------------
# A session still `pending` (no answer from the CPMS) this many seconds after the start fails; hold voided.
CHARGE_START_TIMEOUT = env.int("CHARGE_START_TIMEOUT", default=120)
# A charging/stopping session without a progress reading for this many seconds is completed (`timeout`).
CHARGE_STALE_AFTER = env.int("CHARGE_STALE_AFTER", default=1800)
# First retry (seconds) of a start/stop command the CPMS could not be reached for; doubles per try.
CHARGE_COMMAND_RETRY_DELAY = env.float("CHARGE_COMMAND_RETRY_DELAY", default=5)
# First retry (seconds) of a capture/void the processor failed after a session ended; doubles per try.
CHARGE_PAYMENT_RETRY_DELAY = env.float("CHARGE_PAYMENT_RETRY_DELAY", default=60)
# Longest wait between two retries of either.
CHARGE_RETRY_MAX_DELAY = env.float("CHARGE_RETRY_MAX_DELAY", default=3600)

# --- Webhooks -------------------------------------------------------------------------------------
# Seconds for connecting and for each read of a delivery request.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10)
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# CIDRs exempt from the SSRF guard (e.g. "10.20.0.0/16" for an internal receiver); empty by default.
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
# Delay before retry n (seconds), each +-20 % jitter; after the last one the delivery is failed.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_DISABLE_AFTER = env.int("WEBHOOK_DISABLE_AFTER", default=5 * 24 * 3600)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=30)  # events API: kept at least this long
# A delivery whose task message was sent but not picked up within this many seconds is sent again by the sweeper.
WEBHOOK_REQUEUE_AFTER = env.int("WEBHOOK_REQUEUE_AFTER", default=60)
WEBHOOK_SWEEP_BATCH = env.int("WEBHOOK_SWEEP_BATCH", default=500)
# Fairness: at most this many attempts of one subscription are on their way at once, so that a slow or timing-out
# endpoint holds at most this many worker processes (run webhook workers with a larger --concurrency).
WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION", default=2)
# A retry due within this many seconds is sent by a task scheduled for its due time (countdown); later ones, and
# any whose message is lost, by the sweeper. Below the broker's visibility timeout, so the message is not re-sent.
WEBHOOK_COUNTDOWN_MAX = env.int("WEBHOOK_COUNTDOWN_MAX", default=1800)

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Webhook deliveries have a queue of their own: a backlog of them (a dead receiver, a burst of events) must
# not hold back CPMS start/stop commands and payment settlement; retries (receivers that failed) have a lane of
# their own, so that they never queue before first attempts. `celery -A evpay worker` consumes every queue; a
# deployment may also run workers with `-Q webhooks,webhooks_retry` or `-Q celery` only.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES: dict[str, dict] = {"celery": {}, "webhooks": {}, "webhooks_retry": {}}
CELERY_TASK_ROUTES = {"webhooks.tasks.deliver": {"queue": "webhooks"}}
# Celery closes the worker's database connection after every task unless this is set; a new PostgreSQL
# connection per task tripled the cost of a webhook delivery (bench/README.md). Reopened every N tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # task logs go through LOGGING below, with the same fields
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "var" / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULER = "evpay.beat:HeartbeatScheduler"
# Touched on every beat tick; scripts/healthcheck-beat.sh (Compose, Kubernetes) checks its age.
CELERY_BEAT_HEARTBEAT_FILE = env("CELERY_BEAT_HEARTBEAT_FILE", default=str(BASE_DIR / "var" / "celerybeat-heartbeat"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = BASE_DIR / "var" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # not ./control in the checkout
        "store_processed": False,
    }
else:
    # Redis: a message not acked within this many seconds is redelivered (acks_late + a dead worker).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# Assigned, not only imported: an import alone reads as unused to linters and was dropped once, leaving beat idle.
from evpay.beat import BEAT_SCHEDULE  # noqa: E402

CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text")  # text | json
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "evpay.logging.ContextFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s op=%(operator_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",  # the same lines, encoded by orjson
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(operator_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
    },
}
