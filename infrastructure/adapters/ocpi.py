"""The `ocpi` adapter: evpay as an OCPI 2.2.1 eMSP talking to a CPO's CPMS.

- `base_url` is the CPO's versions endpoint; the 2.2.1 version details give the `locations` (SENDER) and
  `commands` (RECEIVER) endpoints. `credentials.token` is the CPO-issued token, sent as
  `Authorization: Token <base64(token)>` (OCPI 2.2.1, section 4.1.3).
- A mapping's `cpms_station_id` is the OCPI Location id; a connector's `evse_uid` and `connector_id` are the
  EVSE uid and Connector id inside it. Statuses come from Locations (the EVSE status applies to each of its
  connectors) and go through the one status table (a CPMS that leaks OCPP values is mapped too).
- START_SESSION / STOP_SESSION are POSTed to Commands. The synchronous CommandResponse (ACCEPTED, or
  REJECTED / NOT_SUPPORTED / UNKNOWN_SESSION) is the result returned here; the CPO posts the asynchronous
  CommandResult to CPMS_OCPI_RESPONSE_URL. OCPI does not return the CPO's session id with the command:
  `cpms_session_id` is our session id, which the CPO knows as `authorization_reference`, and STOP_SESSION
  sends the CPO session id when one is known, else that reference.
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
UNKNOWN_LOCATION = 2003  # OCPI status_code: "Unknown Location"
MAX_PAGES = 100


class OcpiClient:
    """The HTTP side: envelope handling and error classification. One requests.Session per adapter call."""

    def __init__(self, *, base_url: str, token: str | None, timeout_s: float):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = "Token " + base64.b64encode(token.encode()).decode()

    def request(self, method: str, url: str, **kwargs) -> tuple[requests.Response, dict]:
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
        except ValueError as exc:
            if response.status_code == 404:  # an unknown object, answered without an OCPI envelope
                return response, {"status_code": UNKNOWN_LOCATION, "data": None}
            raise AdapterError(f"OCPI {method} {url}: HTTP {response.status_code}, not JSON") from exc
        if not isinstance(body, dict) or "status_code" not in body:
            raise AdapterError(f"OCPI {method} {url}: not an OCPI response envelope")
        if 3000 <= int(body["status_code"]) < 4000:  # 3xxx: server errors at the CPO
            raise AdapterError(
                f"OCPI {method} {url}: status_code {body['status_code']} {body.get('status_message', '')}"
            )
        return response, body

    def endpoints(self) -> dict[str, str]:
        """{module identifier: url} of the CPO's 2.2.1 version (CPO side: `locations` SENDER, `commands` RECEIVER)."""
        _, versions = self.request("GET", self.base_url)
        version = next((v for v in versions.get("data") or [] if v.get("version") == VERSION), None)
        if version is None:
            raise AdapterError(f"the CPO does not offer OCPI {VERSION}")
        _, details = self.request("GET", version["url"])
        return {e["identifier"]: e["url"] for e in (details.get("data") or {}).get("endpoints", [])}

    def module(self, identifier: str) -> str:
        url = self.endpoints().get(identifier)
        if not url:
            raise AdapterError(f"the CPO offers no OCPI {identifier} module")
        return url.rstrip("/")


def _malformed_answer_is_failure(method):
    """A CPO answer of the wrong shape (a missing key, a list for an object, a status_code that is no number) is
    a CPMS failure, counted against the circuit like a 5xx, not an exception that crashes the caller."""

    @functools.wraps(method)
    def wrapper(self, **kwargs):
        try:
            return method(self, **kwargs)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise AdapterError(f"OCPI: malformed answer ({exc.__class__.__name__}: {exc})"[:300]) from exc

    return wrapper


class OcpiAdapter(CpmsAdapter):
    adapter_type = "ocpi"
    requires_base_url = True
    config_defaults = {"poll_interval_s": 300, "timeout_ms": 10000}

    def _client(self) -> OcpiClient:
        return OcpiClient(
            base_url=self.settings.base_url,
            token=self.settings.credentials.get("token"),
            timeout_s=self.settings.timeout_s,
        )

    def _command(self, command: str, body: dict) -> dict:
        client = self._client()
        _, envelope = client.request("POST", f"{client.module('commands')}/{command}", json=body)
        return envelope

    @staticmethod
    def _result(envelope: dict, cpms_session_id: str | None) -> CommandResult:
        data = envelope.get("data") or {}
        result = str(data.get("result", "")).upper()
        message = data.get("message") or envelope.get("status_message") or ""
        if isinstance(message, list):  # OCPI DisplayText[]
            message = " ".join(m.get("text", "") for m in message if isinstance(m, dict))
        if envelope.get("status_code") == 1000 and result == "ACCEPTED":
            return CommandResult(CommandOutcome.ACCEPTED, cpms_session_id=cpms_session_id, message=str(message))
        return CommandResult(
            CommandOutcome.REJECTED,
            cpms_session_id=cpms_session_id,
            message=f"{result or envelope.get('status_code')}: {message}".strip(),
        )

    @_malformed_answer_is_failure
    def start_session(self, *, cpms_station_id, connector_id, evse_uid, session_id):
        envelope = self._command(
            "START_SESSION",
            {
                "response_url": f"{settings.CPMS_OCPI_RESPONSE_URL.rstrip('/')}/START_SESSION/{session_id}",
                "token": {
                    "country_code": settings.CPMS_OCPI_COUNTRY_CODE,
                    "party_id": settings.CPMS_OCPI_PARTY_ID,
                    "uid": session_id,
                    "type": "AD_HOC_USER",
                    "contract_id": session_id,
                    "issuer": "evpay",
                    "valid": True,
                    "whitelist": "NEVER",
                    "last_updated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                },
                "location_id": cpms_station_id,
                "evse_uid": evse_uid or None,
                "connector_id": connector_id,
                "authorization_reference": session_id,
            },
        )
        return self._result(envelope, session_id)

    @_malformed_answer_is_failure
    def stop_session(self, *, cpms_station_id, cpms_session_id, session_id):
        reference = cpms_session_id or session_id
        envelope = self._command(
            "STOP_SESSION",
            {
                "response_url": f"{settings.CPMS_OCPI_RESPONSE_URL.rstrip('/')}/STOP_SESSION/{session_id}",
                "session_id": reference,
            },
        )
        return self._result(envelope, reference)

    @_malformed_answer_is_failure
    def fetch_connector_statuses(self, *, cpms_station_ids):
        client = self._client()
        wanted = set(cpms_station_ids)
        reports: list[ConnectorStatusReport] = []
        url, params = client.module("locations"), {"limit": 100}
        for _ in range(MAX_PAGES):  # paginated with Link rel="next" (OCPI 2.2.1, section 4.1.5)
            response, envelope = client.request("GET", url, params=params)
            for location in envelope.get("data") or []:
                if location.get("id") in wanted:
                    reports.extend(self._location_reports(location))
            url, params = response.links.get("next", {}).get("url"), None
            if not url:
                break
        return reports

    @staticmethod
    def _location_reports(location: dict) -> list[ConnectorStatusReport]:
        reports = []
        for evse in location.get("evses") or []:
            raw = str(evse.get("status", ""))
            reported_at = _parse_time(evse.get("last_updated"))
            for connector in evse.get("connectors") or []:
                reports.append(
                    ConnectorStatusReport(
                        cpms_station_id=location["id"],
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
            client.endpoints()
            return PingResult(ok=True, latency_ms=int((time.monotonic() - started) * 1000))
        response, envelope = client.request("GET", f"{client.module('locations')}/{cpms_station_id}")
        latency = int((time.monotonic() - started) * 1000)
        if response.status_code == 404 or envelope.get("status_code") == UNKNOWN_LOCATION or not envelope.get("data"):
            return PingResult(ok=False, latency_ms=latency, error=f"the CPMS does not know location {cpms_station_id}")
        return PingResult(ok=True, latency_ms=latency)


def _parse_time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
