"""`model_update`: the one way a service applies a partial change (PATCH) to an instance it has locked."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Model


def model_update(*, instance: Model, fields: Iterable[str], data: Mapping[str, Any]) -> list[str]:
    """Set each of `fields` that `data` has (a value of None means "not given" and is skipped) and differs
    from the instance's. Returns the names that changed, in the order of `fields`; saving stays the caller's
    (it knows which other columns move with the change)."""
    changed = []
    for name in fields:
        if name not in data or data[name] is None:
            continue
        if getattr(instance, name) != data[name]:
            setattr(instance, name, data[name])
            changed.append(name)
    return changed
