"""Plain representations for the hot paths: what a serializer field would show, without building the field.

Each app's `<model>_data` function builds its dict from these, and a test holds it equal to the declared
serializer (the schema's source)."""

from datetime import UTC, datetime
from enum import Enum

from django.conf import settings

_DATETIME_FORMAT = str(settings.REST_FRAMEWORK["DATETIME_FORMAT"])


def datetime_text(value: datetime | None) -> str | None:
    """A DateTimeField's representation: UTC, in the API's format."""
    return None if value is None else value.astimezone(UTC).strftime(_DATETIME_FORMAT)


def text(value) -> str | None:
    """A CharField's representation."""
    return None if value is None else str(value)


def choices_of(enum: type[Enum]) -> dict:
    """The lookup `choice` reads: each value by its string."""
    return {str(member.value): member.value for member in enum}


def choice(value, choices: dict):
    """A ChoiceField's representation: the choice for its string, anything else unchanged."""
    return value if value in ("", None) else choices.get(str(value), value)
