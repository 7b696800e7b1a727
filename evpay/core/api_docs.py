"""OpenAPI words and examples of the health and auth endpoints (merged by evpay.api.docs)."""

from evpay.api.docs import Doc

_CHECK = {"status": "ok", "latency_ms": 0.4}

OPERATIONS = {
    "GET /health": Doc(
        summary="Health",
        description="No credentials, no I/O: answers while the process serves requests.",
        response={"status": "ok"},
    ),
    "GET /health/live": Doc(
        summary="Liveness",
        description="No credentials, no I/O: for a liveness probe (restart the process when it fails).",
        response={"status": "ok"},
    ),
    "GET /health/ready": Doc(
        summary="Readiness",
        description="No credentials. Checks the database, applied migrations and the broker, each within 2 s: "
        "200 when all are `ok`, else 503 with the failing check (`status: unavailable`). For a readiness probe "
        "(send no traffic while it fails).",
        response={"status": "ok", "checks": {"database": _CHECK, "migrations": _CHECK, "broker": _CHECK}},
    ),
    "GET /health/detailed": Doc(
        summary="Detailed health",
        description="Authenticated. Every component at once, each within its own 2 s limit: database, migrations, "
        "broker, cache, Celery workers, CPMS adapters (open circuits), the webhook backlog and the terminal "
        "sweep. `down` when the database, broker or migrations are; `degraded` when anything else is.",
        response={
            "status": "ok",
            "version": "0.1.0",
            "uptime_s": 3600,
            "components": {
                "database": _CHECK,
                "migrations": _CHECK,
                "broker": _CHECK,
                "cache": _CHECK,
                "celery_workers": {"status": "ok", "count": 1, "latency_ms": 21.0},
                "cpms_adapters": {"status": "ok", "open_circuits": 0, "latency_ms": 1.4},
                "webhook_backlog": {
                    "status": "ok",
                    "pending": 0,
                    "oldest_pending_age_s": 0.0,
                    "overdue": 0,
                    "latency_ms": 1.6,
                },
                "terminals": {"status": "ok", "total": 5, "online": 4, "unswept": 0, "latency_ms": 1.3},
            },
        },
    ),
    "POST /v1/auth/token": Doc(
        summary="Obtain a JWT pair",
        description="Exchanges an operator user's `{username, password}` for an `access` token (send it as "
        "`Authorization: Bearer <access>`) and a `refresh` token. Wrong credentials: 401 "
        "`authentication_failed`. Machines use API keys (`X-API-Key`) instead.",
        request={"username": "demo-admin", "password": "demo-admin-password"},
        response={
            "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl",
            "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl",
        },
    ),
    "POST /v1/auth/token/refresh": Doc(
        summary="Refresh an access token",
        description="Exchanges a refresh token for a new access token (and, where the response has one, a new "
        "refresh token to use next). An expired or invalid refresh token, or one issued before the user's password "
        "changed: 401.",
        request={"refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"},
        response={
            "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl",
            "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.bmV3c2lnbmF0dXJl",
        },
    ),
}
