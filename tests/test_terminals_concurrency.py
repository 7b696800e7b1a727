"""Real threads, real PostgreSQL connections: one registration or transition wins, the rest get 409."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from terminals.models import Terminal, TerminalHealthEvent
from tests.charging_support import held_open_elsewhere
from webhooks.models import Event

URL = "/v1/terminals"
N = 12


def _call(raw_key, method, path, body):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    response = getattr(client, method)(path, body, format="json")
    return response.status_code, response.json().get("code")


@pytest.mark.django_db(transaction=True)
def test_parallel_registrations_of_one_serial(client, parallel):
    results = parallel(lambda i: _call(client.raw_key, "post", URL, {"serial_number": "SN-RACE", "vendor": str(i)}), N)
    assert sorted(results) == [(201, None)] + [(409, "terminal_exists")] * (N - 1), results
    assert Terminal.objects.filter(serial_number="SN-RACE").count() == 1
    assert Event.objects.filter(type="terminal.registered").count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_decommissions_one_wins(client, parallel):
    terminal = client.post(URL, {"serial_number": "SN-1"}, format="json").json()
    path = f"{URL}/{terminal['id']}/status"
    results = parallel(lambda i: _call(client.raw_key, "put", path, {"status": "decommissioned"}), N)
    assert sorted(results) == [(200, None)] + [(409, "invalid_state")] * (N - 1), results
    assert Event.objects.filter(type="terminal.status_changed", data__object__id=terminal["id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_health_events_all_recorded_one_status_change(client, parallel):
    terminal = client.post(URL, {"serial_number": "SN-2"}, format="json").json()
    path = f"{URL}/{terminal['id']}/health-events"
    occurred_at = timezone.now().isoformat()
    results = parallel(
        lambda i: _call(client.raw_key, "post", path, {"type": "heartbeat", "occurred_at": occurred_at}), N
    )
    assert results == [(201, None)] * N
    assert TerminalHealthEvent.objects.filter(terminal_id=terminal["id"]).count() == N
    changes = Event.objects.filter(type="terminal.status_changed", data__object__id=terminal["id"])
    assert [e.data["previous_status"] for e in changes] == ["offline"]
    assert Terminal.objects.get(pk=terminal["id"]).status == "online"


@pytest.mark.django_db(transaction=True)
def test_open_status_change_does_not_hold_up_payments_on_the_terminal(operator):
    """A terminal being changed (health event, status, offline sweep) is locked; committing a payment intent on
    it checks its (deferred) foreign key with a share lock on that row, which must not wait for the change."""
    from payments.services import payment_intent_create
    from terminals.services import terminal_register, terminal_status_set

    terminal = terminal_register(operator=operator, serial_number="SN-3")
    with held_open_elsewhere(lambda: terminal_status_set(terminal=terminal, status="maintenance")):
        intent = payment_intent_create(operator=operator, amount=5000, currency="EUR", terminal=terminal)
    assert intent.terminal_id == terminal.pk
    assert Terminal.objects.get(pk=terminal.pk).status == "maintenance"


@pytest.mark.django_db(transaction=True)
def test_a_health_event_reads_the_terminal_with_its_lock(client, operator):
    """A health event while another one holds the terminal: it waits for that one's commit and sees its result
    (here: it is older, so the summary stays the newer error's), instead of deciding on the row as it was and
    writing over the newer event."""
    from datetime import timedelta

    from terminals.services import terminal_health_event_record
    from tests.charging_support import committed_once_waited_for, make_terminal

    terminal = make_terminal(operator)
    now = timezone.now()
    newer = now - timedelta(seconds=10)

    def newer_error():
        terminal_health_event_record(terminal=terminal, type="error", occurred_at=newer, code="E1")

    body = {"type": "heartbeat", "occurred_at": (now - timedelta(seconds=20)).isoformat()}
    with committed_once_waited_for(newer_error):
        response = client.post(f"{URL}/{terminal.pk}/health-events", body, format="json")
    assert response.status_code == 201, response.content
    terminal.refresh_from_db()
    assert (terminal.status, terminal.last_seen_at, terminal.health_last_event_type) == ("faulted", newer, "error")
    assert TerminalHealthEvent.objects.filter(terminal=terminal).count() == 2
