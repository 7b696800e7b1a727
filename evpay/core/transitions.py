"""The one transition checker. Every stateful model keeps its transitions table next to it (a commented
`<MODEL>_TRANSITIONS` in its app's models.py) in one shape: action -> (statuses it may start from, status it
ends in, or None when it keeps the status). Services ask here, on the locked row, before they change it."""

from collections.abc import Callable, Mapping

from evpay.core.errors import InvalidState

Transitions = Mapping[str, tuple[frozenset[str], str | None]]


def transition_allowed(table: Transitions, *, action: str, status: str) -> bool:
    allowed_from, _ = table[action]
    return status in allowed_from


def transition_check(table: Transitions, *, action: str, status: str, refusal: Callable[[frozenset[str]], str]) -> str:
    """The status `action` leads to from `status` (`status` itself for an action that keeps it); 409
    `invalid_state` (detail from `refusal(allowed_from)`) when the table has no such transition."""
    allowed_from, target = table[action]
    if status not in allowed_from:
        raise InvalidState(refusal(allowed_from))
    return status if target is None else target
