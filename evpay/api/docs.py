"""The API's documentation in the OpenAPI schema: the guide, tags, summaries, descriptions and examples.

The views say what an operation takes and returns; the words and examples live beside them, one module per app
(`<app>/api_docs.py`, found the way the admin finds `admin.py`), so that documenting never fights a view edit:

    OPERATIONS = {"POST /v1/payment-intents": Doc(summary=..., description=..., request={...}, response={...})}
    FIELDS = {"PaymentIntent": {"amount_capturable": "What a capture may still take, in minor units."}}

`document` (a drf-spectacular postprocessing hook) merges them into the generated schema: the guide in
`docs/api-guide.md` becomes the schema description (what ReDoc shows first), every operation gets the tag of its
resource, its summary (ReDoc's title), description and examples, every component field its description (a
serializer's own help_text wins). tests/test_api_docs.py fails on any operation left without them.
"""

import copy
import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings

GUIDE = Path(settings.BASE_DIR) / "docs" / "api-guide.md"

# (path prefix, tag, what ReDoc says above the tag's operations), in the order ReDoc lists them.
TAGS: list[tuple[str, str, str]] = [
    ("/v1/payment-intents", "Payment intents", "Pre-authorise an amount on a card, capture what was used, void."),
    ("/v1/refunds", "Refunds", "Give back all or part of a captured payment."),
    ("/v1/adhoc-charges", "Charge sessions", "Ad-hoc charging: quote, start, progress, complete."),
    ("/v1/tariffs", "Tariffs", "Prices a session copies when it starts."),
    ("/v1/terminals", "Terminals", "Card terminals on the chargers: registration, health, fleet statistics."),
    ("/api/v1/webhooks", "Webhooks", "Subscriptions, their signed deliveries and test events."),
    ("/v1/events", "Events", "Every event, kept 30 days: list, read, redeliver (reconciliation)."),
    ("/v1/charging-infrastructure", "Charging infrastructure", "Stations mapped to their CPMS, connectors, adapters."),
    ("/health", "Health", "Liveness, readiness and the detailed health of every component."),
    ("/v1/auth", "Auth", "JWT tokens for users; API keys are made in the admin or on the command line."),
]


@dataclass(frozen=True)
class Doc:
    summary: str
    description: str
    request: Any = None  # example body; or `requests`, several named ones
    requests: dict[str, Any] = field(default_factory=dict)
    response: Any = None  # example of the success response body; or `responses`, several named ones
    responses: dict[str, Any] = field(default_factory=dict)


def page(*objects) -> dict:
    """A list response holding `objects`, as the cursor pagination returns it."""
    return {"results": list(objects), "next": None, "previous": None}


# One example per error status, shown where an operation documents that status.
PROBLEM_EXAMPLES = {
    "400": {
        "type": "https://evpay.dev/errors/validation_error",
        "title": "Validation error",
        "status": 400,
        "detail": "Invalid input.",
        "code": "validation_error",
        "errors": {"amount": ["Ensure this value is greater than or equal to 1."]},
    },
    "401": {
        "type": "https://evpay.dev/errors/not_authenticated",
        "title": "Not authenticated",
        "status": 401,
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    },
    "402": {
        "type": "https://evpay.dev/errors/card_declined",
        "title": "Card declined",
        "status": 402,
        "detail": "Payment intent pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa: The card was declined.",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
    },
    "403": {
        "type": "https://evpay.dev/errors/insufficient_scope",
        "title": "Insufficient scope",
        "status": 403,
        "detail": "This credential lacks the scope payments:write.",
        "code": "insufficient_scope",
    },
    "404": {
        "type": "https://evpay.dev/errors/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "No such object.",
        "code": "not_found",
    },
    "409": {
        "type": "https://evpay.dev/errors/invalid_state",
        "title": "Invalid state",
        "status": 409,
        "detail": "Payment intent pi_3xG0Ck2uX1Vt8Hq0S1Lk6mAa is captured; only an authorized intent can be captured.",
        "code": "invalid_state",
    },
    "413": {
        "type": "https://evpay.dev/errors/request_too_large",
        "title": "Request too large",
        "status": 413,
        "detail": "The request body is larger than 65536 bytes.",
        "code": "request_too_large",
    },
    "415": {
        "type": "https://evpay.dev/errors/unsupported_media_type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": 'Unsupported media type "text/plain" in request.',
        "code": "unsupported_media_type",
    },
    "422": {
        "type": "https://evpay.dev/errors/idempotency_key_reused",
        "title": "Idempotency key reused",
        "status": 422,
        "detail": "This Idempotency-Key was used with another request body or path.",
        "code": "idempotency_key_reused",
    },
    "429": {
        "type": "https://evpay.dev/errors/rate_limited",
        "title": "Rate limited",
        "status": 429,
        "detail": "Request was throttled. Expected available in 2 seconds.",
        "code": "rate_limited",
    },
    "502": {
        "type": "https://evpay.dev/errors/processor_unavailable",
        "title": "Processor refused the request",
        "status": 502,
        "detail": "The payment processor refused the capture (its hold is gone); nothing was changed here.",
        "code": "processor_unavailable",
    },
    "503": {
        "type": "https://evpay.dev/errors/processor_unavailable",
        "title": "Processor unavailable",
        "status": 503,
        "detail": "The payment processor did not answer; nothing was changed, the request is safe to retry.",
        "code": "processor_unavailable",
    },
    "504": {
        "type": "https://evpay.dev/errors/upstream_timeout",
        "title": "Upstream timeout",
        "status": 504,
        "detail": "The CPMS did not answer in time; nothing was changed, the request is safe to retry.",
        "code": "upstream_timeout",
    },
}


# The project's own endpoints (health, auth); every app documents its own in `<app>/api_docs.py`.
_CHECK = {"status": "ok", "latency_ms": 0.4}

PROJECT_OPERATIONS = {
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


@cache
def collected() -> tuple[dict[str, Doc], dict[str, dict[str, str]]]:
    """OPERATIONS and FIELDS of every installed app's `api_docs` module."""
    operations: dict[str, Doc] = dict(PROJECT_OPERATIONS)
    fields: dict[str, dict[str, str]] = {}
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.api_docs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.api_docs":
                raise
            continue
        operations.update(getattr(module, "OPERATIONS", {}))
        for component, descriptions in getattr(module, "FIELDS", {}).items():
            fields.setdefault(component, {}).update(descriptions)
    return operations, fields


def tag_for(path: str) -> str | None:
    for prefix, tag, _ in TAGS:
        if path == prefix or path.startswith(prefix + "/"):
            return tag
    return None


def _examples(named: dict[str, Any]) -> dict:
    return {name: {"summary": name, "value": copy.deepcopy(value)} for name, value in named.items()}


def _set_examples(content: dict, named: dict[str, Any]) -> None:
    for media in content.values():
        if len(named) == 1:
            media["example"] = copy.deepcopy(next(iter(named.values())))
        else:
            media["examples"] = _examples(named)


def _document_operation(operation: dict, doc: Doc) -> None:
    operation["summary"] = doc.summary
    operation["description"] = doc.description
    requests = doc.requests or ({"Example": doc.request} if doc.request is not None else {})
    if requests and "requestBody" in operation:
        _set_examples(operation["requestBody"].get("content", {}), requests)
    responses = doc.responses or ({"Example": doc.response} if doc.response is not None else {})
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2") and responses and response.get("content"):
            _set_examples(response["content"], responses)
            break


def _document_errors(operation: dict) -> None:
    for status, response in operation.get("responses", {}).items():
        example = PROBLEM_EXAMPLES.get(status)
        if example is None:
            continue
        for media in response.get("content", {}).values():
            if "example" not in media and "examples" not in media:
                media["example"] = copy.deepcopy(example)


def document(result, generator, request, public):
    """Postprocessing hook (after `strip_trailing_slashes`, so paths are the contract's)."""
    operations, fields = collected()
    result["info"]["description"] = GUIDE.read_text(encoding="utf-8") if GUIDE.exists() else ""
    result["tags"] = [{"name": tag, "description": description} for _, tag, description in TAGS]
    for path, item in result["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            tag = tag_for(path)
            operation["tags"] = [tag] if tag else operation.get("tags", [])
            doc = operations.get(f"{method.upper()} {path}")
            if doc is not None:
                _document_operation(operation, doc)
            _document_errors(operation)
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        # A component and its request twin (`PaymentIntent`, `PaymentIntentRequest`) share descriptions.
        descriptions = fields.get(name) or fields.get(name.removesuffix("Request").removeprefix("Patched"), {})
        for prop_name, prop in component.get("properties", {}).items():
            text = descriptions.get(prop_name)
            if text and not prop.get("description"):
                if "$ref" in prop:  # OpenAPI 3.0 ignores siblings of $ref: wrap it
                    component["properties"][prop_name] = {"allOf": [{"$ref": prop.pop("$ref")}], **prop}
                    prop = component["properties"][prop_name]
                prop["description"] = text
    return result
