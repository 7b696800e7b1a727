"""Adapter credentials at rest: encrypted JSON (evpay.crypto). Decrypted only to build an adapter; never
returned by the API, shown in the admin or logged."""

import json

from evpay.crypto import InvalidToken, decrypt, encrypt

_PURPOSE = "infrastructure.credentials"


def credentials_encrypt(credentials: dict | None) -> str:
    if not credentials:
        return ""
    return encrypt(json.dumps(credentials, sort_keys=True), purpose=_PURPOSE)


def credentials_decrypt(token: str) -> dict:
    """{} when unset or unreadable (e.g. SECRET_KEY rotated without a fallback): the adapter then fails
    authentication, which the health view shows, instead of crashing every caller."""
    if not token:
        return {}
    try:
        return json.loads(decrypt(token, purpose=_PURPOSE))
    except (InvalidToken, ValueError):
        return {}
