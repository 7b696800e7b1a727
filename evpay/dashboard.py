"""The admin dashboard: today's figures for the operator of the staff user (all operators for superusers).

Each app contributes a function `(operator_id or None, since) -> list[Panel]` (`evpay.core.panels`), listed in
DASHBOARD_SOURCES. This module is project wiring: it names the apps, so nothing of theirs imports it."""

import logging

from django.contrib import admin
from django.utils.module_loading import import_string

from evpay.core.panels import Panel, start_of_today

logger = logging.getLogger(__name__)

DASHBOARD_SOURCES: list[str] = [
    "payments.selectors.dashboard_panels",
    "charging.selectors.dashboard_panels",
    "terminals.selectors.dashboard_panels",
    "infrastructure.selectors.dashboard_panels",
    "webhooks.selectors.dashboard_panels",
]


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
    # The app list beside every page takes a third of a laptop screen from the lists; Home has it.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        operator_id = None if request.user.is_superuser else getattr(request.user, "operator_id", None)
        panels = dashboard_panels(operator_id) if (request.user.is_superuser or operator_id) else []
        return super().index(request, {**(extra_context or {}), "dashboard_panels": panels})
