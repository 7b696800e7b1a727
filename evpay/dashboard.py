"""The admin dashboard: today's figures for the operator of the staff user (all operators for superusers).

Each app contributes a function `(operator_id or None, since) -> list[Panel]`, listed in DASHBOARD_SOURCES."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib import admin
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DASHBOARD_SOURCES: list[str] = [
    "payments.selectors.dashboard_panels",
    "charging.selectors.dashboard_panels",
    "terminals.selectors.dashboard_panels",
    "infrastructure.selectors.dashboard_panels",
    "webhooks.selectors.dashboard_panels",
]


@dataclass
class Panel:
    title: str
    rows: list[tuple[str, object]] = field(default_factory=list)


def start_of_today() -> datetime:
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard_panels(operator_id: str | None) -> list[Panel]:
    panels: list[Panel] = []
    since = start_of_today()
    for path in DASHBOARD_SOURCES:
        try:
            panels.extend(import_string(path)(operator_id=operator_id, since=since))
        except Exception:  # one broken panel must not take the admin down
            logger.exception("dashboard source %s failed", path)
            panels.append(Panel(title=f"{path} unavailable"))
    return panels


class EvpayAdminSite(admin.AdminSite):
    site_header = "evpay back office"
    site_title = "evpay"
    index_title = "Today"
    index_template = "admin/evpay_index.html"

    def index(self, request, extra_context=None):
        operator_id = None if request.user.is_superuser else getattr(request.user, "operator_id", None)
        panels = dashboard_panels(operator_id) if (request.user.is_superuser or operator_id) else []
        return super().index(request, {**(extra_context or {}), "dashboard_panels": panels})
