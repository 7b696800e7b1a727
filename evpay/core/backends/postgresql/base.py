"""PostgreSQL as django-prometheus instruments it, with the connection health check at most once a second.

Django's health check (CONN_HEALTH_CHECKS) sends `SELECT 1` before the first statement of every request: on a
read by id that is a third of the request's round trips (bench/README.md). The check is there for a persistent
connection that died while it sat idle (a server restart, an idle timeout), and such a connection is still
checked: a connection is checked when it was last checked (or opened) DATABASE_HEALTH_CHECK_INTERVAL seconds ago
or more, which every connection idle that long was. One that died within the interval fails its first
statement instead; that request answers 503 `service_unavailable` (evpay/api/errors.py), Django finds the
connection unusable at the request's end and the next request opens a new one."""

import time

from django.conf import settings
from django_prometheus.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = float("-inf")

    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        now = time.monotonic()
        if now - self._checked_at < settings.DATABASE_HEALTH_CHECK_INTERVAL:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
        self._checked_at = now

    def connect(self):
        super().connect()
        self._checked_at = time.monotonic()  # a new connection has just answered
