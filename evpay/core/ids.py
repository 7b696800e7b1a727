"""Opaque, prefixed identifiers (`pi_…`, `trm_…`) used as primary keys."""

import secrets

from django.db import models

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


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
