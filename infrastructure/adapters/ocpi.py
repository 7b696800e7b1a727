"""The `ocpi` adapter: evpay as an OCPI 2.2.1 eMSP talking to a CPO's CPMS (the client side; evpay's own OCPI
endpoints, which the CPO calls, are in `infrastructure.emsp`).

- `base_url` is the CPO's versions endpoint; its 2.2.1 version details give the module URLs (`locations` SENDER,
  `commands` RECEIVER, `credentials`). Every URL the CPO advertises is used exactly as given (a trailing slash
  is kept; a path segment is joined with exactly one slash). The discovery is cached per CPO (the registry keeps
  it on the operator's `OcpiRegistration`) and refreshed when a module URL answers 404 or the credentials
  handshake runs again.
- `credentials.token` is the token evpay calls the CPO with (token C after the handshake), sent as
  `Authorization: Token <base64(token)>` (OCPI 2.2.1, section 4.1.3).
- A mapping's `cpms_station_id` is the OCPI Location id; a connector's `evse_uid` and `connector_id` are the
  EVSE uid and Connector id inside it, all compared without regard to case (OCPI CiString). Statuses come from
  Locations and go through the one status table.
- START_SESSION / STOP_SESSION are POSTed to Commands. The synchronous CommandResponse ACCEPTED only says the
  CPO forwards the command (`sent`); the charger's answer arrives as the CommandResult posted to
  CPMS_OCPI_RESPONSE_URL, or as a Session pushed to our Sessions receiver (which also tells us the CPO's session
  id, used by STOP_SESSION). REJECTED / NOT_SUPPORTED / UNKNOWN_SESSION are `rejected`.
- Answers are read leniently where OCPI implementations differ harmlessly: `data` given as a one-element list
  where an object is due is read as that object; a 404 without the OCPI envelope is "unknown", not a failure.
"""

import base64
import functools
import time
from datetime import UTC, datetime

import requests
from django.conf import settings

from ..statuses import OCPI, to_ocpi_status
from .base import (
    AdapterConnectionError,
    AdapterError,
    AdapterTimeout,
    CommandOutcome,
    CommandResult,
    ConnectorStatusReport,
    CpmsAdapter,
    PingResult,
)

VERSION = "2.2.1"
SUCCESS = 1000
UNKNOWN_LOCATION = 2003  # OCPI status_code: "Unknown Location"
MAX_PAGES = 100
SENDER, RECEIVER = "SENDER", "RECEIVER"


def ocpi_token_header(token: str) -> str:
    """`Token <base64(token)>`, as OCPI 2.2.1 sends every token."""
    return "Token " + base64.b64encode(token.encode()).decode()


def ocpi_object(data):
    """The object an OCPI `data` field carries: a dict, or the single element of a one-element list (some CPOs
    wrap objects in a list). Anything else is malformed."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise TypeError(f"expected an OCPI object, got {type(data).__name__}")
    return data


def ocpi_join(url: str, *segments: str) -> str:
    """An advertised URL with path segments appended, joined by exactly one slash (the URL itself is kept)."""
    for segment in segments:
        url = (url if url.endswith("/") else url + "/") + str(segment)
    return url


class OcpiClient:
    """The HTTP side: envelope handling and error classification. One requests.Session per adapter call."""

    def __init__(self, *, token: str | None, timeout_s: float):
        self.timeout_s = timeout_s
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = ocpi_token_header(token)

    def request(self, method: str, url: str, **kwargs) -> tuple[requests.Response, dict]:
        """(response, envelope). Raises AdapterError for what is a CPMS failure: no answer, 5xx, 401/403, a
        3xxx status_code, an answer that is not OCPI. A 404 without an envelope is returned as "unknown"."""
        if not url:
            raise AdapterError("no OCPI base_url configured")
        try:
            response = self.http.request(method, url, timeout=self.timeout_s, allow_redirects=False, **kwargs)
        except requests.Timeout as exc:
            raise AdapterTimeout(f"OCPI {method} {url} timed out after {self.timeout_s:g} s") from exc
        except requests.ConnectionError as exc:
            raise AdapterConnectionError(f"OCPI {method} {url}: connection failed") from exc
        except requests.RequestException as exc:
            raise AdapterError(f"OCPI {method} {url}: {exc.__class__.__name__}") from exc
        if response.status_code in (401, 403):
            raise AdapterError(f"OCPI {method} {url}: HTTP {response.status_code} (check the credentials token)")
        if response.status_code >= 500:
            raise AdapterError(f"OCPI {method} {url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status_code" not in body:
            if response.status_code == 404:  # an unknown object or URL, answered without an OCPI envelope
                return response, {"status_code": UNKNOWN_LOCATION, "data": None, "status_message": "HTTP 404"}
            raise AdapterError(f"OCPI {method} {url}: HTTP {response.status_code}, not an OCPI response envelope")
        try:
            status_code = int(body["status_code"])
        except (TypeError, ValueError):
            raise AdapterError(f"OCPI {method} {url}: status_code {body['status_code']!r} is not a number") from None
        body["status_code"] = status_code
        if 3000 <= status_code < 4000:  # 3xxx: server errors at the CPO
            raise AdapterError(f"OCPI {method} {url}: status_code {status_code} {body.get('status_message', '')}")
        return response, body


def ocpi_discover(client: OcpiClient, versions_url: str) -> dict:
    """The CPO's 2.2.1 endpoints: `{"versions_url", "details_url", "endpoints": {identifier: {role: url}}}`."""
    _, versions = client.request("GET", versions_url)
    offered = versions.get("data")
    offered = [offered] if isinstance(offered, dict) else offered or []
    version = next((v for v in offered if isinstance(v, dict) and str(v.get("version")) == VERSION), None)
    if version is None:
        raise AdapterError(f"the CPO does not offer OCPI {VERSION}")
    _, details = client.request("GET", version["url"])
    endpoints: dict[str, dict[str, str]] = {}
    for endpoint in ocpi_object(details.get("data")).get("endpoints") or []:
        role = str(endpoint.get("role") or "").upper() or "ANY"
        endpoints.setdefault(str(endpoint["identifier"]), {})[role] = str(endpoint["url"])
    return {"versions_url": versions_url, "details_url": version["url"], "endpoints": endpoints}


def ocpi_module_url(discovery: dict, identifier: str, role: str) -> str | None:
    roles = (discovery.get("endpoints") or {}).get(identifier) or {}
    return roles.get(role) or roles.get("ANY") or next(iter(roles.values()), None)


def _malformed_answer_is_failure(method):
    """A CPO answer of the wrong shape (a missing key, a list of several where an object is due, a number
    that is none) is a CPMS failure, counted against the circuit like a 5xx, not an exception that crashes
    the caller."""

    @functools.wraps(method)
    def wrapper(self, **kwargs):
        try:
            return method(self, **kwargs)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise AdapterError(f"OCPI: malformed answer ({exc.__class__.__name__}: {exc})"[:300]) from exc

    return wrapper


# CommandResponseType (the CPO's synchronous answer) -> our outcome.
COMMAND_RESPONSES = {
    "ACCEPTED": CommandOutcome.SENT,
    "REJECTED": CommandOutcome.REJECTED,
    "NOT_SUPPORTED": CommandOutcome.REJECTED,
    "UNKNOWN_SESSION": CommandOutcome.REJECTED,
}


def display_text(message) -> str:
    if isinstance(message, list):  # OCPI DisplayText[]
        return " ".join(str(m.get("text", "")) for m in message if isinstance(m, dict))
    return str(message or "")


class OcpiAdapter(CpmsAdapter):
    adapter_type = "ocpi"
    requires_base_url = True
    config_defaults = {"poll_interval_s": 300, "timeout_ms": 10000}

    def _client(self) -> OcpiClient:
        return OcpiClient(token=self.settings.credentials.get("token"), timeout_s=self.settings.timeout_s)

    def _discovery(self, client: OcpiClient, *, refresh: bool = False) -> dict:
        cached = self.discovered or self.settings.discovery
        if not refresh and cached.get("versions_url") == self.settings.base_url and cached.get("endpoints"):
            return cached
        self.discovered = ocpi_discover(client, self.settings.base_url)
        return self.discovered

    def _module(self, client: OcpiClient, identifier: str, role: str, *, refresh: bool = False) -> str:
        url = ocpi_module_url(self._discovery(client, refresh=refresh), identifier, role)
        if not url:
            raise AdapterError(f"the CPO offers no OCPI {identifier} module")
        return url

    def _module_request(self, client, identifier, role, method, *segments, **kwargs):
        """A request to a module URL; a 404 re-runs the discovery once (the CPO may have moved the module) and,
        when the URL changed, the request goes to the new one (it never reached the module before)."""
        fresh = self.discovered is not None
        url = self._module(client, identifier, role)
        response, envelope = client.request(method, ocpi_join(url, *segments), **kwargs)
        if response.status_code == 404 and not fresh:
            moved = self._module(client, identifier, role, refresh=True)
            if moved != url:
                response, envelope = client.request(method, ocpi_join(moved, *segments), **kwargs)
        return response, envelope

    def _command(self, command: str, body: dict) -> CommandResult:
        client = self._client()
        _, envelope = self._module_request(client, "commands", RECEIVER, "POST", command, json=body)
        data = envelope.get("data")
        response = ocpi_object(data) if data else {}
        result = str(response.get("result", "")).upper()
        message = display_text(response.get("message")) or str(envelope.get("status_message") or "")
        outcome = COMMAND_RESPONSES.get(result, CommandOutcome.REJECTED)
        if envelope["status_code"] != SUCCESS and outcome is CommandOutcome.SENT:
            outcome = CommandOutcome.REJECTED  # "accepted" inside an error envelope is no acceptance
        if outcome is CommandOutcome.SENT:
            return CommandResult(outcome, message=message)
        return CommandResult(outcome, message=f"{result or envelope['status_code']}: {message}".strip())

    def _response_url(self, command: str, session_id: str) -> str:
        return ocpi_join(settings.CPMS_OCPI_RESPONSE_URL, command, session_id)

    @_malformed_answer_is_failure
    def start_session(self, *, cpms_station_id, connector_id, evse_uid, session_id):
        return self._command(
            "START_SESSION",
            {
                "response_url": self._response_url("START_SESSION", session_id),
                "token": {
                    "country_code": settings.CPMS_OCPI_COUNTRY_CODE,
                    "party_id": settings.CPMS_OCPI_PARTY_ID,
                    "uid": session_id,
                    "type": "AD_HOC_USER",
                    "contract_id": session_id,
                    "issuer": "evpay",
                    "valid": True,
                    "whitelist": "NEVER",
                    "last_updated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                },
                "location_id": cpms_station_id,
                "evse_uid": evse_uid or None,
                "connector_id": connector_id,
                "authorization_reference": session_id,
            },
        )

    @_malformed_answer_is_failure
    def stop_session(self, *, cpms_station_id, cpms_session_id, session_id):
        # The CPO's own session id (learnt from its Sessions module); before one is known, our reference.
        result = self._command(
            "STOP_SESSION",
            {
                "response_url": self._response_url("STOP_SESSION", session_id),
                "session_id": cpms_session_id or session_id,
            },
        )
        return CommandResult(result.outcome, cpms_session_id=cpms_session_id, message=result.message)

    @_malformed_answer_is_failure
    def fetch_connector_statuses(self, *, cpms_station_ids):
        client = self._client()
        wanted = {station.casefold(): station for station in cpms_station_ids}
        reports: list[ConnectorStatusReport] = []
        response, envelope = self._module_request(client, "locations", SENDER, "GET", params={"limit": 100})
        for _ in range(MAX_PAGES):  # paginated with Link rel="next" (OCPI 2.2.1, section 4.1.5)
            if response.status_code == 404:
                raise AdapterError("OCPI: the locations module answered 404")
            data = envelope.get("data") or []
            for location in [data] if isinstance(data, dict) else data:
                station = wanted.get(str(location.get("id", "")).casefold())
                if station is not None:
                    reports.extend(self._location_reports(location, station))
            url = response.links.get("next", {}).get("url")
            if not url:
                break
            response, envelope = client.request("GET", url)
        return reports

    @staticmethod
    def _location_reports(location: dict, station: str) -> list[ConnectorStatusReport]:
        reports = []
        for evse in location.get("evses") or []:
            raw = str(evse.get("status", ""))
            reported_at = _parse_time(evse.get("last_updated"))
            for connector in evse.get("connectors") or []:
                reports.append(
                    ConnectorStatusReport(
                        cpms_station_id=station,
                        connector_id=str(connector.get("id")),
                        evse_uid=str(evse.get("uid", "")),
                        status=to_ocpi_status(protocol=OCPI, raw_status=raw),
                        protocol=OCPI,
                        raw_status=raw,
                        reported_at=reported_at,
                    )
                )
        return reports

    @_malformed_answer_is_failure
    def ping(self, *, cpms_station_id=None):
        started = time.monotonic()
        client = self._client()
        if cpms_station_id is None:
            self._discovery(client, refresh=True)
            return PingResult(ok=True, latency_ms=int((time.monotonic() - started) * 1000))
        response, envelope = self._module_request(client, "locations", SENDER, "GET", cpms_station_id)
        latency = int((time.monotonic() - started) * 1000)
        if response.status_code == 404 or envelope["status_code"] != SUCCESS or not envelope.get("data"):
            return PingResult(ok=False, latency_ms=latency, error=f"the CPMS does not know location {cpms_station_id}")
        return PingResult(ok=True, latency_ms=latency)


def _parse_time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
