"""Opaque, prefixed identifiers (`pi_…`, `trm_…`) used as primary keys."""

import os

from django.db import models

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


_LENGTH = 24
# 62**24 is about 2**142.9: 18 random bytes (144 bits) cover it, and the remainder's bias is 2**-142 small.
_RANDOM_BYTES = 18


def new_id(prefix: str) -> str:
    # One read of the OS's random source and 24 divisions, instead of 24 calls of secrets.choice (a hot path:
    # every intent, event and delivery gets one).
    number = int.from_bytes(os.urandom(_RANDOM_BYTES), "big")
    digits = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(digits)


class PrefixedIdField(models.CharField):
    """CharField primary key whose default is a fresh `<prefix>_<24 base62 chars>`."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_default(self):
        return new_id(self.prefix)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for key, value in (("max_length", 40), ("primary_key", True), ("editable", False)):
            if kwargs.get(key) == value:
                kwargs.pop(key)
        return name, path, args, kwargs
