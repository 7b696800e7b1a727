"""GET /v1/terminals/stats: correct on a mixed fleet, a constant number of queries whatever its size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from terminals.models import HealthEventType, Terminal, TerminalHealthEvent, TerminalStatus
from terminals.selectors import terminal_counts_by_status

URL = "/v1/terminals/stats"
STATUSES = ["online", "offline", "faulted", "maintenance", "decommissioned"]
EVENT_TYPES = ["heartbeat", "error", "warning", "recovered", "reboot", "tamper"]


def fleet(operator, n: int, *, now=None) -> list[Terminal]:
    """n terminals cycling through statuses, vendors and models; every 7th online one silent for an hour."""
    now = now or timezone.now()
    terminals = []
    for i in range(n):
        status = STATUSES[i % 5]
        seen = now - timedelta(hours=1) if status == "online" and i % 7 == 0 else now
        terminals.append(
            Terminal(
                operator=operator,
                serial_number=f"SN-{i:06d}",
                vendor=["Ingenico", "Verifone"][i % 2],
                model=["A", "B", "C"][i % 3],
                status=status,
                last_seen_at=seen,
            )
        )
    return Terminal.objects.bulk_create(terminals, batch_size=2000)


@pytest.mark.django_db
class TestStats:
    def test_mixed_fleet(self, client, operator, other_operator):
        now = timezone.now()
        terminals = Terminal.objects.bulk_create(
            [
                Terminal(
                    operator=operator,
                    serial_number="1",
                    vendor="Ingenico",
                    model="Self 2000",
                    status="online",
                    last_seen_at=now,
                ),
                Terminal(
                    operator=operator,
                    serial_number="2",
                    vendor="Ingenico",
                    model="Self 2000",
                    status="online",
                    last_seen_at=now - timedelta(minutes=10),
                ),  # stale
                Terminal(
                    operator=operator,
                    serial_number="3",
                    vendor="Verifone",
                    model="UX700",
                    status="faulted",
                    last_seen_at=now,
                ),
                Terminal(operator=operator, serial_number="4", vendor="Verifone", model="UX410", status="maintenance"),
                Terminal(operator=operator, serial_number="5", vendor="", model="", status="offline"),
                Terminal(
                    operator=operator, serial_number="6", vendor="Ingenico", model="Move 5000", status="decommissioned"
                ),
                Terminal(
                    operator=other_operator,
                    serial_number="1",
                    vendor="Other",
                    model="X",
                    status="online",
                    last_seen_at=now,
                ),
            ]
        )
        t1, t3, foreign = terminals[0], terminals[2], terminals[6]
        TerminalHealthEvent.objects.bulk_create(
            [TerminalHealthEvent(operator=operator, terminal=t1, type="heartbeat", occurred_at=now) for _ in range(3)]
            + [
                TerminalHealthEvent(operator=operator, terminal=t3, type="error", occurred_at=now - timedelta(hours=1)),
                TerminalHealthEvent(operator=operator, terminal=t3, type="tamper", occurred_at=now),
                # outside the 24 h window, and another operator's: not counted
                TerminalHealthEvent(
                    operator=operator, terminal=t1, type="error", occurred_at=now - timedelta(hours=25)
                ),
                TerminalHealthEvent(operator=foreign.operator, terminal=foreign, type="warning", occurred_at=now),
            ]
        )
        response = client.get(URL)
        assert response.status_code == 200
        assert response.json() == {
            "total": 6,
            "by_status": {"online": 2, "offline": 1, "faulted": 1, "maintenance": 1, "decommissioned": 1},
            "by_vendor": {"Ingenico": 3, "Verifone": 2, "unknown": 1},
            "by_model": {"Self 2000": 2, "UX700": 1, "UX410": 1, "Move 5000": 1, "unknown": 1},
            "online_ratio": 2 / 6,
            "stale": 1,
            "health_events_24h": {"heartbeat": 3, "error": 1, "warning": 0, "recovered": 0, "reboot": 0, "tamper": 1},
        }

    def test_empty_fleet(self, client):
        body = client.get(URL).json()
        assert body == {
            "total": 0,
            "by_status": dict.fromkeys(STATUSES, 0),
            "by_vendor": {},
            "by_model": {},
            "online_ratio": 0.0,
            "stale": 0,
            "health_events_24h": dict.fromkeys(EVENT_TYPES, 0),
        }

    @override_settings(TERMINAL_OFFLINE_AFTER=3600 * 2)
    def test_stale_follows_the_setting(self, client, operator):
        fleet(operator, 35)
        assert client.get(URL).json()["stale"] == 0

    def test_same_number_of_queries_for_10_and_10000_terminals(self, client, operator, django_assert_max_num_queries):
        client.get(URL)  # authentication bookkeeping (last_used_at) happens on the first request
        fleet(operator, 10)
        with CaptureQueriesContext(connection) as small:
            small_body = client.get(URL).json()
        assert small_body["total"] == 10
        fleet_size = 10_000
        Terminal.objects.filter(operator=operator).delete()
        terminals = fleet(operator, fleet_size)
        TerminalHealthEvent.objects.bulk_create(
            [
                TerminalHealthEvent(
                    operator=operator, terminal=terminals[i], type=EVENT_TYPES[i % 6], occurred_at=timezone.now()
                )
                for i in range(0, fleet_size, 3)
            ],
            batch_size=2000,
        )
        with django_assert_max_num_queries(len(small.captured_queries)):
            body = client.get(URL).json()
        assert body["total"] == fleet_size
        assert body["by_status"] == dict.fromkeys(STATUSES, fleet_size // 5)
        assert body["stale"] == len([i for i in range(0, fleet_size, 5) if i % 7 == 0])
        assert sum(body["health_events_24h"].values()) == len(range(0, fleet_size, 3))
        assert sum(body["by_vendor"].values()) == sum(body["by_model"].values()) == fleet_size


@pytest.mark.django_db
def test_counts_by_status_for_metrics(operator, other_operator, django_assert_num_queries):
    fleet(operator, 10)
    Terminal.objects.create(operator=other_operator, serial_number="X", status=TerminalStatus.ONLINE)
    with django_assert_num_queries(1):
        counts = terminal_counts_by_status()
    assert counts == {"online": 3, "offline": 2, "faulted": 2, "maintenance": 2, "decommissioned": 2}
    assert terminal_counts_by_status(operator_id=other_operator.pk) == {**dict.fromkeys(STATUSES, 0), "online": 1}
    assert set(HealthEventType.values) == set(EVENT_TYPES)
