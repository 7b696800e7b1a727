"""The admin dashboard's figures as the apps give them (`<app>.selectors.dashboard_panels`): plain data, so that
the apps need nothing of the admin site that shows them (`evpay.dashboard`, project wiring)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone


@dataclass
class Panel:
    title: str
    rows: list[tuple[str, object]] = field(default_factory=list)


def start_of_today() -> datetime:
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
