"""The reference: a bare Django REST framework app, what the framework itself costs for one small write and one read.

No authentication, no throttling, no middleware, no idempotency, no events: validate `{amount, currency}` and
insert one row; get one row by id. Same PostgreSQL and the same gunicorn settings as evpay in `make bench`, and
persistent connections (CONN_MAX_AGE), so that evpay is compared with a well-deployed bare app, not a slow one.
"""

import os

SECRET_KEY = os.environ.get("SECRET_KEY", "reference-app-for-benchmarks-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "rest_framework", "refapp"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "refapp.urls"
WSGI_APPLICATION = "refapp.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("REFERENCE_DATABASE", "evpay_bench_reference"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
