"""Builders shared by the charging tests: a tariff, a mapped station, a terminal, an authorized intent; and a
transaction held open in another thread (lock tests)."""

import threading
from contextlib import contextmanager
from decimal import Decimal

from charging.services import tariff_create
from infrastructure.services import mapping_create
from payments import services as payment_services
from terminals.models import Terminal

START_URL = "/v1/adhoc-charges/start"
URL = "/v1/adhoc-charges"


def make_tariff(
    operator,
    *,
    currency="EUR",
    price_per_kwh="0.59",
    price_per_minute="0",
    session_fee="0",
    vat_rate_percent="0",
    preauthorize_amount=5000,
    is_default=True,
    name="Standard",
):
    return tariff_create(
        operator=operator,
        name=name,
        currency=currency,
        price_per_kwh=Decimal(price_per_kwh),
        price_per_minute=Decimal(price_per_minute),
        session_fee=Decimal(session_fee),
        vat_rate_percent=Decimal(vat_rate_percent),
        preauthorize_amount=preauthorize_amount,
        is_default=is_default,
    )


def make_station(operator, *, station_id="DE*EVP*S1", cpms_station_id="CP-1", tariff=None, connectors=("1",)):
    return mapping_create(
        operator=operator,
        station_id=station_id,
        adapter_type="simulator",
        cpms_station_id=cpms_station_id,
        tariff_id=tariff.pk if tariff is not None else None,
        connectors=[
            {
                "connector_id": c,
                "evse_uid": f"{cpms_station_id}-E{c}",
                "standard": "IEC_62196_T2_COMBO",
                "power_type": "DC",
                "max_power_kw": Decimal("150"),
            }
            for c in connectors
        ],
    )


def make_terminal(operator, *, status="online", serial="SN-1"):
    return Terminal.objects.create(operator=operator, serial_number=serial, status=status)


def authorized_intent(operator, *, amount=5000, currency="EUR", terminal=None):
    intent = payment_services.payment_intent_create(
        operator=operator, amount=amount, currency=currency, terminal=terminal
    )
    return payment_services.payment_intent_authorize(intent=intent, token="tok_visa")


def start_body(terminal, intent, *, station_id="DE*EVP*S1", connector_id="1", **extra):
    return {
        "terminal_id": terminal.pk,
        "station_id": station_id,
        "connector_id": connector_id,
        "payment_intent_id": intent.pk,
        **extra,
    }


def start_session(operator, *, intent=None, terminal=None, station_id="DE*EVP*S1", connector_id="1"):
    """A pending session through the service (the start command is not sent: no worker, no commit)."""
    from charging.services import charge_session_start

    terminal = terminal or make_terminal(operator, serial=f"SN-{Terminal.objects.count() + 1}")
    return charge_session_start(
        operator=operator,
        terminal_id=terminal.pk,
        station_id=station_id,
        connector_id=connector_id,
        payment_intent_id=(intent or authorized_intent(operator)).pk,
    )


@contextmanager
def held_open_elsewhere(change):
    """Run `change()` in a transaction on another thread's connection and keep that transaction open (its row
    locks held) until the block ends. Inside the block, statements of this thread time out after 2 s of waiting
    for a lock, so a lock conflict fails the test instead of hanging it."""
    from django.db import connection, connections, transaction

    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                change()
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            yield
    finally:
        release.set()
        holder.join(10)


@contextmanager
def committed_once_waited_for(change):
    """Run `change()` in a transaction on another thread's connection and commit it as soon as a statement of
    another transaction waits for one of its locks (seen in pg_locks, not timed). A request made inside the
    block that reads a row `change()` locked with the row's lock waits and then sees the change; one that reads
    it without the lock sees the row as it was before."""
    import time

    from django.db import connection, connections, transaction

    held, failures = threading.Event(), []

    def hold():
        try:
            with transaction.atomic():
                change()
                held.set()
                deadline = time.monotonic() + 10
                with connection.cursor() as cursor:
                    while time.monotonic() < deadline:
                        cursor.execute(
                            "SELECT count(*) FROM pg_locks "
                            "WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                        )
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.01)
        except Exception as exc:  # surfaced to the test below
            failures.append(exc)
        finally:
            held.set()
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        holder.join(15)
    assert not failures, failures
