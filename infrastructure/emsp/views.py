"""evpay's OCPI 2.2.1 endpoints (eMSP side). Every answer is an OCPI envelope (`data`, `status_code`,
`status_message`, `timestamp`); every call needs `Authorization: Token <token B>` (base64 as 2.2.1 says, or
plain) of a registered CPO and acts only on the operator that registered it.

Status codes: 1000 success; 2000 a client error (missing/unknown token: HTTP 401; unknown path: 404; method:
405); 2001 invalid or missing parameters (HTTP 400); 2004 unknown token, i.e. an authorization reference or
session we never issued (HTTP 404); 3000 a server error (HTTP 503, e.g. the database briefly away). Bad input
changes nothing."""

import functools
import json
import logging
import math
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from evpay.core.errors import DomainError

from .feed import CpmsSessionReport, session_feed
from .services import (
    VERSION,
    ocpi_caller,
    ocpi_credentials_object,
    ocpi_credentials_receive,
    ocpi_details_url,
    ocpi_unregister,
)

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_CLOCK_SKEW = timedelta(minutes=5)  # a time further ahead of our clock is a broken clock
COMMAND_RESULTS = frozenset(
    {
        "ACCEPTED",
        "CANCELED_RESERVATION",
        "EVSE_OCCUPIED",
        "EVSE_INOPERATIVE",
        "FAILED",
        "NOT_SUPPORTED",
        "REJECTED",
        "TIMEOUT",
        "UNKNOWN_RESERVATION",
    }
)
COMMANDS = frozenset({"START_SESSION", "STOP_SESSION"})
SESSION_STATUSES = frozenset({"ACTIVE", "COMPLETED", "INVALID", "PENDING", "RESERVATION"})


class OcpiError(Exception):
    def __init__(self, status_code: int, message: str, http: int = 400):
        super().__init__(message)
        self.status_code, self.message, self.http = status_code, message, http


def ocpi_response(data=None, *, status_code: int = 1000, message: str = "Success", http: int = 200, headers=None):
    body = {
        "data": data,
        "status_code": status_code,
        "status_message": message[:255],
        "timestamp": timezone.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    response = JsonResponse(body, status=http)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def ocpi_endpoint(*methods: str, registered: bool = True):
    """Method check, token authentication and OCPI error answers around a receiver. `registered=False`: a
    token offered in a running handshake is accepted too (versions, details, credentials)."""

    def decorate(fn):
        @csrf_exempt
        @functools.wraps(fn)
        def view(request, *args, **kwargs):
            try:
                caller = ocpi_caller(request.headers.get("Authorization", ""))
                if caller is None or (registered and not caller[0].registered):
                    return ocpi_response(
                        status_code=2000, message="Missing or unknown token (Authorization: Token ...).", http=401
                    )
                if request.method not in methods:
                    return ocpi_response(status_code=2000, message=f"{request.method} is not allowed here.", http=405)
                return fn(request, *caller, *args, **kwargs)
            except OcpiError as exc:
                return ocpi_response(status_code=exc.status_code, message=exc.message, http=exc.http)
            except DomainError as exc:  # the charge session refused the report; nothing changed
                code = 3000 if exc.status_code >= 500 else 2001
                return ocpi_response(status_code=code, message=str(exc.detail), http=503 if code == 3000 else 400)
            except DatabaseError:
                logger.exception("OCPI %s %s: database error", request.method, request.path)
                return ocpi_response(status_code=3000, message="Temporarily unavailable; retry later.", http=503)

        return view

    return decorate


# --- parsing --------------------------------------------------------------------------------------------


def _invalid(message: str) -> OcpiError:
    return OcpiError(2001, message)


def _body(request) -> dict:
    if len(request.body) > MAX_BODY:
        raise _invalid(f"The body exceeds {MAX_BODY} bytes.")

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    try:
        body = json.loads(request.body or b"null", parse_constant=no_constants)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise _invalid("The body is not valid JSON.") from None
    if isinstance(body, list) and len(body) == 1:  # an object wrapped in a one-element list
        body = body[0]
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object.")
    return body


def _string(body: dict, name: str, *, required: bool = True, max_length: int = 255) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name} is required.")
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _invalid(f"{name} must be a string of 1 to {max_length} characters.")
    return value


def _time(body: dict, name: str, *, required: bool = True) -> datetime | None:
    raw = _string(body, name, required=required, max_length=40)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid(f"{name} must be an RFC 3339 date-time.") from None
    if value.tzinfo is None:  # OCPI: no zone designator means UTC
        value = value.replace(tzinfo=UTC)
    if value.year < 2000 or value > timezone.now() + MAX_CLOCK_SKEW:
        raise _invalid(f"{name} must lie between 2000 and now.")
    return value


def _energy_wh(body: dict, name: str, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name} is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{name} must be a number (kWh).")
    if not 0 <= value <= 100_000:
        raise _invalid(f"{name} must be between 0 and 100000 kWh.")
    return int((Decimal(str(value)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _find(registration, *, reference: str | None, cpms_session_id: str | None) -> str:
    session_id = session_feed().find(
        operator_id=registration.operator_id, reference=reference, cpms_session_id=cpms_session_id
    )
    if session_id is None:
        raise OcpiError(2004, f"Unknown token or session: {reference or cpms_session_id}", http=404)
    return session_id


def _check_party(registration, country_code: str, party_id: str) -> None:
    known = (registration.cpo_country_code, registration.cpo_party_id)
    if all(known) and (country_code.upper(), party_id.upper()) != known:
        raise _invalid(f"{country_code}/{party_id} is not the party that registered this token.")


# --- endpoints ------------------------------------------------------------------------------------------


@ocpi_endpoint("GET", registered=False)
def versions(request, registration, token):
    return ocpi_response([{"version": VERSION, "url": ocpi_details_url()}])


@ocpi_endpoint("GET", registered=False)
def version_details(request, registration, token):
    base = ocpi_details_url()
    endpoints = [
        ("credentials", "SENDER"),
        ("credentials", "RECEIVER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
        ("commands", "SENDER"),  # the eMSP sends commands; the CommandResult comes back to its response_url
    ]
    return ocpi_response(
        {
            "version": VERSION,
            "endpoints": [{"identifier": i, "role": role, "url": f"{base}/{i}/"} for i, role in endpoints],
        }
    )


@ocpi_endpoint("GET", "POST", "PUT", "DELETE", registered=False)
def credentials(request, registration, token):
    if request.method == "GET":
        return ocpi_response(ocpi_credentials_object(token=token, operator=registration.operator))
    if request.method == "DELETE":
        if not registration.registered:
            return ocpi_response(status_code=2000, message="Not registered.", http=405)
        ocpi_unregister(config=registration.config)
        return ocpi_response()
    if request.method == "POST" and registration.registered:
        return ocpi_response(status_code=2000, message="Registered already; update with PUT.", http=405)
    if request.method == "PUT" and not registration.registered:
        return ocpi_response(status_code=2000, message="Not registered yet; register with POST.", http=405)
    body = _body(request)
    cpo = {
        "token": _string(body, "token", max_length=1000),
        "url": _string(body, "url", max_length=500),
        "roles": body.get("roles") if isinstance(body.get("roles"), list) else [],
    }
    if not cpo["url"].startswith(("http://", "https://")):
        raise _invalid("url must be the CPO's versions URL.")
    try:
        ours = ocpi_credentials_receive(
            registration=registration, credentials=cpo, timeout_s=registration.config.timeout_ms / 1000
        )
    except DomainError as exc:
        raise OcpiError(3001, f"Unable to use the client's API: {exc.detail}", http=200) from exc
    return ocpi_response(ours)


@ocpi_endpoint("POST")
def command_result(request, registration, token, command, uid):
    if command.upper() not in COMMANDS:
        raise _invalid(f"evpay sends no {command} commands.")
    body = _body(request)
    result = _string(body, "result", max_length=40).upper()
    if result not in COMMAND_RESULTS:
        raise _invalid(f"result must be one of {', '.join(sorted(COMMAND_RESULTS))}.")
    message = body.get("message")
    text = " ".join(str(m.get("text", "")) for m in message if isinstance(m, dict)) if isinstance(message, list) else ""
    session_id = _find(registration, reference=uid, cpms_session_id=None)
    session_feed().command_result(session_id=session_id, command=command.upper(), result=result, message=text[:300])
    return ocpi_response()


@ocpi_endpoint("PUT", "PATCH")
def session(request, registration, token, country_code, party_id, session_id):
    _check_party(registration, country_code, party_id)
    body = _body(request)
    full = request.method == "PUT"
    if full and str(body.get("id", "")).casefold() != session_id.casefold():
        raise _invalid("id must be the session id of the URL.")
    status = _string(body, "status", required=full, max_length=20)
    if status is not None and status.upper() not in SESSION_STATUSES:
        raise _invalid(f"status must be one of {', '.join(sorted(SESSION_STATUSES))}.")
    report = CpmsSessionReport(
        cpms_session_id=session_id,
        energy_wh=_energy_wh(body, "kwh", required=full),
        measured_at=_time(body, "last_updated"),
        status=(status or "").upper(),
        started_at=_time(body, "start_date_time", required=full),
        ended_at=_time(body, "end_date_time", required=False),
    )
    reference = _string(body, "authorization_reference", required=False, max_length=36)
    ours = _find(registration, reference=reference, cpms_session_id=session_id)
    session_feed().session_report(session_id=ours, report=report)
    return ocpi_response()


@ocpi_endpoint("POST")
def cdrs(request, registration, token):
    body = _body(request)
    cdr_id = _string(body, "id", max_length=39)
    report = CpmsSessionReport(
        cpms_session_id=_string(body, "session_id", required=False, max_length=36) or "",
        energy_wh=_energy_wh(body, "total_energy"),
        measured_at=_time(body, "last_updated"),
        started_at=_time(body, "start_date_time"),
        ended_at=_time(body, "end_date_time"),
        final=True,
    )
    reference = _string(body, "authorization_reference", required=False, max_length=36)
    ours = _find(registration, reference=reference, cpms_session_id=report.cpms_session_id or None)
    session_feed().session_report(session_id=ours, report=report)
    logger.info("CDR %s of %s applied to %s", cdr_id, registration.operator_id, ours)
    return ocpi_response()


def not_found(request, path=""):
    return ocpi_response(status_code=2000, message="No such OCPI endpoint.", http=404)
