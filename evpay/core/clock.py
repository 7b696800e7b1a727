"""Time rules shared by every app: how far ahead of our clock a reported time may be."""

from datetime import datetime, timedelta

from django.utils import timezone

from evpay.core.errors import ValidationFailed

# A terminal's or a CPMS's clock may run a little ahead of ours; a time further ahead is bad input.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def not_in_future(value: datetime, *, field: str, now: datetime | None = None) -> None:
    """400 when `value` is more than MAX_CLOCK_SKEW ahead of the server's clock."""
    if value > (now or timezone.now()) + MAX_CLOCK_SKEW:
        raise ValidationFailed(
            f"{field} is in the future.",
            errors={field: ["More than 5 minutes ahead of the server's clock."]},
        )
