"""Admin: terminal list (filters, search), health events inline latest first and read-only, status actions."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.utils import timezone

from evpay.core.services import operator_user_create
from terminals.admin import INLINE_EVENTS
from terminals.models import Terminal, TerminalHealthEvent
from webhooks.models import Event

CHANGELIST = "/admin/terminals/terminal/"


@pytest.fixture
def staff(admin_user):
    browser = Client()
    browser.force_login(admin_user)
    return browser


@pytest.fixture
def terminals(operator, other_operator):
    now = timezone.now()
    return {
        "a": Terminal.objects.create(
            operator=operator,
            serial_number="ALPHA-1",
            vendor="Ingenico",
            model="Self",
            status="online",
            last_seen_at=now,
        ),
        "b": Terminal.objects.create(
            operator=operator,
            serial_number="BETA-2",
            vendor="Verifone",
            model="UX700",
            status="faulted",
            last_seen_at=now,
        ),
        "foreign": Terminal.objects.create(operator=other_operator, serial_number="ALPHA-9", vendor="Ingenico"),
    }


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {t.pk for t in response.context["cl"].result_list}


@pytest.mark.django_db
class TestTerminalAdmin:
    def test_list_filters_and_search_within_the_operator(self, staff, terminals):
        a, b = terminals["a"].pk, terminals["b"].pk
        assert listed(staff.get(CHANGELIST)) == {a, b}
        assert listed(staff.get(CHANGELIST, {"status": "faulted"})) == {b}
        assert listed(staff.get(CHANGELIST, {"vendor": "Ingenico"})) == {a}
        assert listed(staff.get(CHANGELIST, {"model": "UX700"})) == {b}
        assert listed(staff.get(CHANGELIST, {"q": "ALPHA"})) == {a}

    def test_health_events_inline_latest_first_read_only(self, staff, terminals, operator):
        terminal = terminals["a"]
        now = timezone.now()
        TerminalHealthEvent.objects.bulk_create(
            [
                TerminalHealthEvent(
                    operator=operator,
                    terminal=terminal,
                    type="heartbeat",
                    code=f"C{i}",
                    occurred_at=now - timedelta(minutes=i),
                )
                for i in range(INLINE_EVENTS + 10)
            ]
        )
        response = staff.get(f"{CHANGELIST}{quote(terminal.pk)}/change/")
        assert response.status_code == 200
        html = response.content.decode()
        shown = [f"C{i}" for i in range(INLINE_EVENTS + 10) if f">C{i}<" in html]
        assert shown == [f"C{i}" for i in range(INLINE_EVENTS)]  # the latest ones only
        assert html.index(">C0<") < html.index(">C1<") < html.index(f">C{INLINE_EVENTS - 1}<")
        assert 'name="health_events-0-code"' not in html  # read-only: no inputs
        assert 'name="_save"' not in html  # the terminal itself is view-only too

    def test_actions_call_the_services(self, staff, terminals):
        a, b = terminals["a"], terminals["b"]
        response = staff.post(CHANGELIST, {"action": "set_maintenance", "_selected_action": [a.pk, b.pk]})
        assert response.status_code == 302
        assert set(Terminal.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {"maintenance"}
        changes = Event.objects.filter(type="terminal.status_changed")
        assert sorted(e.data["previous_status"] for e in changes.all()) == ["faulted", "online"]
        staff.post(CHANGELIST, {"action": "back_online", "_selected_action": [a.pk]})
        assert Terminal.objects.get(pk=a.pk).status == "online"
        assert changes.count() == 3

    def test_action_reports_invalid_transitions(self, staff, terminals):
        a = terminals["a"]
        Terminal.objects.filter(pk=a.pk).update(status="decommissioned")
        response = staff.post(CHANGELIST, {"action": "back_online", "_selected_action": [a.pk]}, follow=True)
        assert "decommissioned" in " ".join(str(m) for m in response.context["messages"])
        assert Terminal.objects.get(pk=a.pk).status == "decommissioned"
        assert not Event.objects.exists()

    def test_viewer_sees_but_cannot_act(self, operator, terminals):
        viewer = operator_user_create(operator=operator, username="vic", password="pw-123456", role="viewer")
        browser = Client()
        browser.force_login(viewer)
        response = browser.get(CHANGELIST)
        assert listed(response) == {terminals["a"].pk, terminals["b"].pk}
        assert "set_maintenance" not in response.content.decode()
        browser.post(CHANGELIST, {"action": "set_maintenance", "_selected_action": [terminals["a"].pk]})
        assert Terminal.objects.get(pk=terminals["a"].pk).status == "online"

    def test_health_event_admin_lists_operator_events(self, staff, terminals, operator, other_operator):
        mine = TerminalHealthEvent.objects.create(
            operator=operator, terminal=terminals["a"], type="error", occurred_at=timezone.now()
        )
        TerminalHealthEvent.objects.create(
            operator=other_operator, terminal=terminals["foreign"], type="error", occurred_at=timezone.now()
        )
        assert listed(staff.get("/admin/terminals/terminalhealthevent/")) == {mine.pk}
