"""HTTP to webhook receivers: one requests.Session per worker process (connections are reused), no
redirects, a bounded time budget, and a connection to the very address the SSRF guard checked."""

import ipaddress
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from .ssrf import UrlNotAllowed, url_resolve_checked

RESPONSE_BODY_LIMIT = 2048
# Read at most this much of a response: enough to keep the connection reusable, bounded against floods.
_DRAIN_LIMIT = 64 * 1024
USER_AGENT = "evpay-webhooks/1"


@dataclass
class SendResult:
    status: int | None
    duration_ms: int
    error: str | None = None
    body: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class PinnedAddressAdapter(HTTPAdapter):
    """The URL carries the checked IP; TLS still verifies the certificate for the original host name
    (taken from the Host header) and sends it as SNI."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            hostname = urlsplit("//" + request.headers["Host"]).hostname
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


_session: requests.Session | None = None


def session() -> requests.Session:
    """Created lazily, so each prefork child gets its own (sockets must not be shared across a fork)."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.trust_env = False  # no proxies from the environment: we connect to the checked address
        adapter = PinnedAddressAdapter(pool_connections=32, pool_maxsize=4, max_retries=0)
        _session.mount("https://", adapter)
        _session.mount("http://", adapter)
    return _session


def _pinned_url(url: str, address) -> tuple[str, str]:
    """(URL with the checked IP in place of the host, Host header naming the original host)."""
    parts = urlsplit(url)
    ip = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    hostname = parts.hostname or ""  # checked by the SSRF guard before
    host = f"[{hostname}]" if ":" in hostname else hostname
    port = "" if parts.port is None else f":{parts.port}"
    return urlunsplit((parts.scheme, ip + port, parts.path or "/", parts.query, "")), host + port


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def post(*, url: str, body: bytes, headers: dict) -> SendResult:
    timeout = settings.WEBHOOK_TIMEOUT
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        _, _, address = url_resolve_checked(url)
    except UrlNotAllowed as exc:
        return SendResult(status=None, duration_ms=elapsed_ms(), error=f"url_not_allowed: {exc.detail}")
    target, host_header = _pinned_url(url, address)
    try:
        response = session().post(
            target,
            data=body,
            headers={**headers, "Host": host_header, "User-Agent": USER_AGENT},
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        return SendResult(status=None, duration_ms=elapsed_ms(), error=f"timeout after {timeout:g} s")
    except requests.RequestException as exc:
        return SendResult(status=None, duration_ms=elapsed_ms(), error=f"connection_error: {exc}"[:500])
    content, timed_out = b"", False
    try:
        for chunk in response.iter_content(8192):
            content += chunk
            if len(content) > _DRAIN_LIMIT or time.monotonic() - started > timeout:
                timed_out = len(content) <= _DRAIN_LIMIT
                response.close()  # the connection is not reused
                break
    except requests.RequestException:
        timed_out = True
        response.close()
    result = SendResult(
        status=response.status_code,
        duration_ms=elapsed_ms(),
        body=content[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace"),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
    if timed_out:
        result.status, result.error = None, f"timeout after {timeout:g} s reading the response"
    elif 300 <= response.status_code < 400:
        result.error = f"redirect ({response.status_code}) not followed"
    elif not result.ok:
        result.error = f"HTTP {response.status_code}"
    return result
