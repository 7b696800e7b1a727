"""Time rules shared by every app: the bounds of a time a client sends (contract section 0, "Time")."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from evpay.core.errors import ValidationFailed

# A terminal's or a CPMS's clock may run a little ahead of ours; a time further ahead is bad input.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Nothing the platform records happened before this; an earlier time (a year 42, a clock reset) is bad input.
EARLIEST_REQUEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def is_in_future(value: datetime, *, now: datetime | None = None) -> bool:
    """The one "in the future" rule: more than MAX_CLOCK_SKEW ahead of the server's clock."""
    return value > (now or timezone.now()) + MAX_CLOCK_SKEW


def not_in_future(value: datetime, *, field: str, now: datetime | None = None) -> None:
    """400 when `value` is in the future (`is_in_future`)."""
    if is_in_future(value, now=now):
        raise ValidationFailed(
            f"{field} is in the future.",
            errors={field: ["More than 5 minutes ahead of the server's clock."]},
        )


def request_time_problem(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why `value` (aware) is not an acceptable client time, or None. `evpay.api.fields.RequestTimeField`
    applies it to every time field of a request body."""
    if value < EARLIEST_REQUEST_TIME:
        return "Must not be before 2000-01-01T00:00:00Z."
    if is_in_future(value, now=now):
        return "Must not be more than 5 minutes ahead of the server's clock."
    return None
