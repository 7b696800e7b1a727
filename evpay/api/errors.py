"""The one exception handler: every error (a `evpay.core.errors.DomainError`, a DRF or Django exception, a bug)
becomes RFC 9457 problem details."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from evpay.core.errors import DomainError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
ERROR_TYPE_BASE = "https://evpay.dev/errors/"


class IdempotentReplay(Exception):
    """Raised before a view runs (`evpay.api.idempotency`); the handler answers with the stored response."""

    def __init__(self, response: Response):
        super().__init__("idempotent replay")
        self.response = response


_DRF_CODES = {
    drf.NotAuthenticated: (401, "not_authenticated", "Not authenticated"),
    drf.AuthenticationFailed: (401, "authentication_failed", "Authentication failed"),
    drf.PermissionDenied: (403, "insufficient_scope", "Insufficient scope"),
    drf.NotFound: (404, "not_found", "Not found"),
    drf.MethodNotAllowed: (405, "method_not_allowed", "Method not allowed"),
    drf.NotAcceptable: (406, "not_acceptable", "Not acceptable"),
    drf.UnsupportedMediaType: (415, "unsupported_media_type", "Unsupported media type"),
    drf.Throttled: (429, "rate_limited", "Too many requests"),
    drf.ParseError: (400, "validation_error", "Malformed request body"),
    drf.ValidationError: (400, "validation_error", "Validation error"),
}


def problem_body(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str = "",
    errors: dict | None = None,
    extra: dict | None = None,
) -> dict:
    body = {
        "type": ERROR_TYPE_BASE + code,
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail or title or code,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(
    *, status: int, code: str, title: str | None = None, detail: str = "", errors: dict | None = None
) -> JsonResponse:
    """A plain Django response for code that runs outside DRF (middleware, URL handlers)."""
    return JsonResponse(
        problem_body(status=status, code=code, title=title, detail=detail, errors=errors),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _flatten_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value):
    if isinstance(value, dict):
        return {key: _messages(v) for key, v in value.items()}
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        return [_messages(v) for v in value]
    return [str(value)]


def _first_message(errors: dict) -> str:
    for field, messages in errors.items():
        while isinstance(messages, (list, dict)) and messages:
            messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
        return f"{field}: {messages}" if field != "non_field_errors" else str(messages)
    return "Validation error"


# The database unreachable (restarting, failing over, out of connections): the request changed nothing, so the
# client may retry. Django drops the broken connection when the request ends and opens a new one for the next.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_S = 5
_SERVICE_UNAVAILABLE: dict[str, Any] = {
    "status": 503,
    "code": "service_unavailable",
    "title": "Service unavailable",
    "detail": "The database is unavailable for a moment; retry the request.",
}


def database_unavailable_body(exc: Exception) -> dict:
    logger.warning("Database unavailable: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
    return problem_body(**_SERVICE_UNAVAILABLE)


_INTERNAL_ERROR: dict[str, Any] = {
    "status": 500,
    "code": "internal_error",
    "title": "Internal server error",
    "detail": "An unexpected error occurred; it has been logged.",
}


def problem_exception_handler(exc, context):
    if isinstance(exc, IdempotentReplay):
        return exc.response

    if isinstance(exc, DomainError):
        body = problem_body(
            status=exc.status_code,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            extra=exc.extra,
        )
        return Response(body, status=exc.status_code, headers=exc.headers, content_type=PROBLEM_CONTENT_TYPE)

    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, drf.APIException):
        status, code, title = next(
            (spec for cls, spec in _DRF_CODES.items() if isinstance(exc, cls)),
            (exc.status_code, getattr(exc, "default_code", "error"), "Error"),
        )
        errors = None
        if isinstance(exc, (drf.ValidationError, drf.ParseError)):  # a malformed body is a validation error too
            errors = _flatten_errors(exc.detail)
            detail = _first_message(errors)
        elif isinstance(exc.detail, dict):  # simplejwt's InvalidToken: {"detail": ..., "code": ..., "messages": ...}
            detail = str(exc.detail.get("detail", title))
        else:
            detail = str(exc.detail)
        headers = {}
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        body = problem_body(status=status, code=code, title=title, detail=detail, errors=errors)
        return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)

    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return Response(
            database_unavailable_body(exc),
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            content_type=PROBLEM_CONTENT_TYPE,
        )

    # Anything else is a bug: log it with its traceback and answer a problem document, never an HTML page.
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__ if context else "?")
    return Response(problem_body(**_INTERNAL_ERROR), status=500, content_type=PROBLEM_CONTENT_TYPE)


def handler404(request, exception=None):
    return problem_response(status=404, code="not_found", title="Not found", detail="No such resource.")


def handler500(request):
    return problem_response(**_INTERNAL_ERROR)


def database_unavailable_response(exc: Exception) -> JsonResponse:
    """For code outside DRF (middleware, admin): the same 503 as the exception handler answers."""
    response = JsonResponse(database_unavailable_body(exc), status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response
