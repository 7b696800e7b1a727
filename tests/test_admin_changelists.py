"""Every admin changelist costs the same number of queries for 1 row as for 30 (no N+1)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from evpay.core.services import api_key_create, operator_user_create


def _payment_intents(operator, n):
    from payments.models import PaymentIntent
    from terminals.models import Terminal

    for i in range(n):
        terminal = Terminal.objects.create(operator=operator, serial_number=f"SN-{i}-{PaymentIntent.objects.count()}")
        PaymentIntent.objects.create(operator=operator, amount=100 + i, currency="EUR", terminal=terminal)


def _api_keys(operator, n):
    for _ in range(n):
        api_key_create(operator=operator, scopes=["*"])


def _users(operator, n):
    from evpay.core.models import User

    start = User.objects.count()
    for i in range(n):
        operator_user_create(operator=operator, username=f"user{start + i}", password="pw-123456", role="viewer")


def _terminals(operator, n):
    from terminals.models import Terminal

    start = Terminal.objects.count()
    Terminal.objects.bulk_create([Terminal(operator=operator, serial_number=f"SN-{start + i}") for i in range(n)])


def _terminal_health_events(operator, n):
    from django.utils import timezone

    from terminals.models import Terminal, TerminalHealthEvent

    for _ in range(n):
        terminal = Terminal.objects.create(operator=operator, serial_number=f"SN-H-{Terminal.objects.count()}")
        TerminalHealthEvent.objects.create(operator=operator, terminal=terminal, type="heartbeat",
                                           occurred_at=timezone.now())


def _charge_sessions(operator, n):
    from charging.models import Tariff
    from charging.services import charge_session_start
    from tests.charging_support import authorized_intent, make_station, make_tariff, make_terminal

    if not Tariff.objects.filter(operator=operator, is_default=True).exists():
        make_tariff(operator)
    for _ in range(n):
        i = operator.charge_sessions.count()
        make_station(operator, station_id=f"S-{i}", cpms_station_id=f"CP-{i}")
        charge_session_start(operator=operator, terminal_id=make_terminal(operator, serial=f"SN-C{i}").pk,
                             station_id=f"S-{i}", connector_id="1", payment_intent_id=authorized_intent(operator).pk)


def _tariffs(operator, n):
    from tests.charging_support import make_tariff

    for i in range(n):
        make_tariff(operator, name=f"T{i}", is_default=False)


# (changelist URL, factory(operator, n)). Each app adds its models here.
CHANGELISTS = [
    ("/admin/payments/paymentintent/", _payment_intents),
    ("/admin/core/apikey/", _api_keys),
    ("/admin/core/user/", _users),
    ("/admin/terminals/terminal/", _terminals),
    ("/admin/terminals/terminalhealthevent/", _terminal_health_events),
    ("/admin/charging/chargesession/", _charge_sessions),
    ("/admin/charging/tariff/", _tariffs),
]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("url,factory", CHANGELISTS, ids=[u for u, _ in CHANGELISTS])
def test_changelist_queries_do_not_grow_with_rows(url, factory, operator):
    from evpay.core.models import User

    superuser = User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    client = Client()
    client.force_login(superuser)
    factory(operator, 1)
    few = _queries(client, url)
    factory(operator, 30)
    many = _queries(client, url)
    assert many == few, f"{url}: {few} queries for 1 row, {many} for 31"


@pytest.mark.django_db
def test_operator_staff_see_only_their_operator(operator, other_operator):
    from payments.models import PaymentIntent

    mine = PaymentIntent.objects.create(operator=operator, amount=1, currency="EUR")
    theirs = PaymentIntent.objects.create(operator=other_operator, amount=2, currency="EUR")
    user = operator_user_create(operator=operator, username="staff", password="pw-123456", role="admin")
    client = Client()
    client.force_login(user)
    page = client.get("/admin/payments/paymentintent/").content.decode()
    assert mine.id in page and theirs.id not in page
    assert client.get(f"/admin/payments/paymentintent/{theirs.id}/change/").status_code in (302, 404)
    assert client.get(f"/admin/payments/paymentintent/{mine.id}/change/").status_code == 200


@pytest.mark.django_db
def test_dashboard_shows_todays_figures_of_the_operator(operator, other_operator):
    from payments import services

    for amount in (1250, 750):
        intent = services.payment_intent_create(operator=operator, amount=amount, currency="EUR")
        services.payment_intent_capture(intent=services.payment_intent_authorize(intent=intent, token="tok_visa"))
    foreign = services.payment_intent_create(operator=other_operator, amount=99900, currency="EUR")
    services.payment_intent_capture(intent=services.payment_intent_authorize(intent=foreign, token="tok_visa"))
    user = operator_user_create(operator=operator, username="staff", password="pw-123456", role="viewer")
    client = Client()
    client.force_login(user)
    page = client.get("/admin/").content.decode()
    for title in ("Captured today", "Charging sessions", "Terminals by status", "Connectors by status", "Webhooks"):
        assert title in page, title
    assert "20.00 (2)" in page  # 1250 + 750 cents, two captures; the other operator's 999.00 is not counted
    assert "999.00" not in page
