"""SSRF guard: webhook URLs must not reach our own network. Checked when a URL is saved and again at send
time after DNS resolution; the sender then connects to the address that was checked (no DNS rebinding)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from evpay.core.errors import DomainError

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlNotAllowed(DomainError):
    status_code, code, title = 400, "url_not_allowed", "URL not allowed"


def _allowed_networks() -> list:
    return [
        ipaddress.ip_network(cidr.strip(), strict=False) for cidr in settings.WEBHOOK_ALLOWED_NETWORKS if cidr.strip()
    ]


def address_is_blocked(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _allowed_networks()):
        return False
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in _CGNAT
        or not address.is_global
    )


def url_form_checked(url: str) -> tuple[str, int]:
    """(host, port) of a URL whose scheme, port, host and lack of credentials are allowed; no DNS lookup."""
    parts = urlsplit(url)
    allowed_schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed_schemes:
        hint = "" if settings.WEBHOOK_ALLOW_HTTP else " (the server allows http:// receivers with WEBHOOK_ALLOW_HTTP=1)"
        raise UrlNotAllowed(
            f"Webhook URLs must use {' or '.join(allowed_schemes)}{hint}.", errors={"url": ["Scheme not allowed."]}
        )
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlNotAllowed("The URL has an invalid port.", errors={"url": ["Invalid port."]}) from None
    if not host:
        raise UrlNotAllowed("The URL has no host.", errors={"url": ["No host."]})
    if parts.username or parts.password:
        raise UrlNotAllowed("Credentials in webhook URLs are not allowed.", errors={"url": ["Credentials in URL."]})
    return host, port


def url_resolve_checked(url: str) -> tuple[str, int, IPAddress]:
    """Return (host, port, address to connect to) for a URL every resolved address of which is allowed.
    Raises UrlNotAllowed otherwise."""
    host, port = url_form_checked(url)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UrlNotAllowed(
                f"The host {host} does not resolve: {exc}.", errors={"url": ["Host does not resolve."]}
            ) from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    # Every address must pass: a host with one public and one private address could be steered to the latter.
    blocked = [str(a) for a in addresses if address_is_blocked(a)]
    if blocked or not addresses:
        raise UrlNotAllowed(
            f"The host {host} is or resolves to a non-public address ({', '.join(blocked)}); the server allows "
            "such receivers inside WEBHOOK_ALLOWED_NETWORKS (comma-separated CIDRs, e.g. 127.0.0.0/8).",
            errors={"url": ["Address not allowed."]},
        )
    return host, port, addresses[0]
