"""Secrets we must read back (webhook signing secrets, CPMS credentials) are stored encrypted.

Fernet, with keys derived from SECRET_KEY and then each of SECRET_KEY_FALLBACKS: a rotated SECRET_KEY keeps
decrypting what the old one wrote while it is listed as a fallback. Each purpose derives its own key."""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

__all__ = ["InvalidToken", "EncryptedTextField", "decrypt", "encrypt"]


# HKDF per key and purpose once per process, not on every value read from or written to the database.
@functools.lru_cache(maxsize=64)
def _key(secret_key: str, purpose: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"evpay.{purpose}".encode()).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet(purpose: str) -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_key(key, purpose) for key in keys])


def encrypt(plaintext: str, *, purpose: str) -> str:
    return _fernet(purpose).encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, purpose: str) -> str:
    """Raises InvalidToken when no current or fallback key can read it."""
    return _fernet(purpose).decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """Holds plain text in Python and Fernet tokens in the database. Not searchable, by design."""

    def __init__(self, *args, purpose: str, **kwargs):
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value, purpose=self.purpose)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value, purpose=self.purpose)
