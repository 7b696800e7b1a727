"""Adapter credentials at rest: Fernet-encrypted JSON, key derived from SECRET_KEY. Decrypted only to
build an adapter; never returned by the API, shown in the admin or logged."""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"evpay.infrastructure.credentials").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def credentials_encrypt(credentials: dict | None) -> str:
    if not credentials:
        return ""
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def credentials_decrypt(token: str) -> dict:
    """{} when unset or unreadable (e.g. SECRET_KEY rotated): the adapter then fails authentication,
    which the health view shows, instead of crashing every caller."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return {}
