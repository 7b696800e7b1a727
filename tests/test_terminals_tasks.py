"""Beat jobs of the terminals app: the offline sweep (with errors_24h refresh) and pruning of health events."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from terminals.models import Terminal, TerminalHealthEvent
from terminals.services import terminal_health_event_record
from terminals.tasks import aggregate_health, prune_health_events
from tests.conftest import wait_for
from webhooks.models import Event


def make(operator, serial, status, seen_ago: timedelta | None):
    seen = None if seen_ago is None else timezone.now() - seen_ago
    return Terminal.objects.create(operator=operator, serial_number=serial, status=status, last_seen_at=seen)


def silent_and_fresh_fleet(operator) -> dict[str, Terminal]:
    return {
        "online_silent": make(operator, "1", "online", timedelta(minutes=6)),
        "online_fresh": make(operator, "2", "online", timedelta(minutes=4)),
        "faulted_silent": make(operator, "3", "faulted", timedelta(hours=2)),
        "online_never_seen": make(operator, "4", "online", None),
        "maintenance_silent": make(operator, "5", "maintenance", timedelta(days=2)),
        "decommissioned_silent": make(operator, "6", "decommissioned", timedelta(days=2)),
        "offline_silent": make(operator, "7", "offline", timedelta(days=2)),
    }


def statuses(terminals: dict[str, Terminal]) -> dict[str, str]:
    return {name: Terminal.objects.get(pk=t.pk).status for name, t in terminals.items()}


EXPECTED_AFTER_SWEEP = {
    "online_silent": "offline",
    "online_fresh": "online",
    "faulted_silent": "offline",
    "online_never_seen": "offline",
    "maintenance_silent": "maintenance",
    "decommissioned_silent": "decommissioned",
    "offline_silent": "offline",
}


@pytest.mark.django_db
class TestOfflineSweep:
    def test_silent_terminals_go_offline_with_events(self, operator):
        terminals = silent_and_fresh_fleet(operator)
        assert aggregate_health()["marked_offline"] == 3
        assert statuses(terminals) == EXPECTED_AFTER_SWEEP
        events = Event.objects.filter(type="terminal.status_changed")
        assert sorted((e.data["object"]["id"], e.data["previous_status"]) for e in events) == sorted(
            [
                (terminals["online_silent"].pk, "online"),
                (terminals["faulted_silent"].pk, "faulted"),
                (terminals["online_never_seen"].pk, "online"),
            ]
        )
        assert all(e.data["object"]["status"] == "offline" for e in events)
        assert "300 seconds" in Terminal.objects.get(pk=terminals["online_silent"].pk).status_reason
        assert aggregate_health()["marked_offline"] == 0  # nothing twice
        assert events.count() == 3

    @override_settings(TERMINAL_OFFLINE_AFTER=60)
    def test_threshold_is_the_setting(self, operator):
        terminals = {
            "two_minutes": make(operator, "1", "online", timedelta(minutes=2)),
            "thirty_seconds": make(operator, "2", "online", timedelta(seconds=30)),
        }
        aggregate_health()
        assert statuses(terminals) == {"two_minutes": "offline", "thirty_seconds": "online"}

    def test_more_than_a_batch(self, operator):
        Terminal.objects.bulk_create(
            [
                Terminal(
                    operator=operator,
                    serial_number=f"S{i}",
                    status="online",
                    last_seen_at=timezone.now() - timedelta(hours=1),
                )
                for i in range(1203)
            ]
        )
        assert aggregate_health()["marked_offline"] == 1203
        assert not Terminal.objects.filter(status="online").exists()
        assert Event.objects.filter(type="terminal.status_changed").count() == 1203

    def test_a_heartbeat_after_the_sweep_brings_it_back(self, operator):
        terminal = make(operator, "1", "online", timedelta(hours=1))
        aggregate_health()
        terminal_health_event_record(terminal=terminal, type="heartbeat", occurred_at=timezone.now())
        assert Terminal.objects.get(pk=terminal.pk).status == "online"

    def test_errors_24h_drops_old_errors(self, operator):
        terminal = make(operator, "1", "online", timedelta(seconds=1))
        quiet = make(operator, "2", "online", timedelta(seconds=1))
        for hours in (23, 1):
            terminal_health_event_record(
                terminal=terminal, type="error", code="E", occurred_at=timezone.now() - timedelta(hours=hours)
            )
        assert Terminal.objects.get(pk=terminal.pk).health_errors_24h == 2
        TerminalHealthEvent.objects.filter(
            terminal=terminal, occurred_at__lt=timezone.now() - timedelta(hours=22)
        ).update(occurred_at=timezone.now() - timedelta(hours=25))
        assert aggregate_health()["errors_24h_refreshed"] == 1
        assert Terminal.objects.get(pk=terminal.pk).health_errors_24h == 1
        assert Terminal.objects.get(pk=quiet.pk).health_errors_24h == 0
        assert aggregate_health()["errors_24h_refreshed"] == 0  # a count that stays is not rewritten
        TerminalHealthEvent.objects.filter(terminal=terminal).update(occurred_at=timezone.now() - timedelta(days=2))
        aggregate_health()
        assert Terminal.objects.get(pk=terminal.pk).health_errors_24h == 0


@pytest.mark.django_db
class TestPrune:
    def events(self, terminal, *ages_days):
        return TerminalHealthEvent.objects.bulk_create(
            [
                TerminalHealthEvent(
                    operator_id=terminal.operator_id,
                    terminal=terminal,
                    type="heartbeat",
                    occurred_at=timezone.now() - timedelta(days=age),
                )
                for age in ages_days
            ]
        )

    def test_prunes_past_retention(self, operator):
        terminal = make(operator, "1", "online", timedelta(seconds=1))
        kept = self.events(terminal, 0, 29.9)
        self.events(terminal, 30.1, 45, 400)
        assert prune_health_events() == 3
        assert set(TerminalHealthEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}

    @override_settings(TERMINAL_HEALTH_RETENTION_DAYS=7)
    def test_retention_is_the_setting(self, operator):
        terminal = make(operator, "1", "online", timedelta(seconds=1))
        self.events(terminal, 6, 8)
        assert prune_health_events() == 1


@pytest.mark.django_db(transaction=True)
def test_sweep_through_a_real_worker(operator, celery_worker):
    terminals = silent_and_fresh_fleet(operator)
    aggregate_health.delay()
    wait_for(lambda: statuses(terminals) == EXPECTED_AFTER_SWEEP, message="the worker's offline sweep")
    assert Event.objects.filter(type="terminal.status_changed").count() == 3


def test_beat_schedules_both_jobs():
    from django.conf import settings

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["terminals.tasks.aggregate_health"] == timedelta(minutes=1)
    assert "terminals.tasks.prune_health_events" in schedule
