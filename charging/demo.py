"""Charging's demo data for `manage.py seed_demo`, and the whole demo: charging is the top app, so it is the one
that may compose every app's demo (each made through that app's public services, with their events).
Idempotent, safe to run on every start."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from evpay.core.demo import api_key_demo_create, operator_demo_seed
from evpay.core.models import Operator
from infrastructure.adapters.base import CommandOutcome, CommandResult
from infrastructure.demo import DEMO_STATIONS, mapping_demo_seed
from infrastructure.models import StationMapping
from infrastructure.services import mapping_update
from payments import services as payment_services
from terminals.demo import terminal_demo_seed
from terminals.models import Terminal
from webhooks.demo import webhook_subscription_demo_seed

from . import selectors
from .models import ChargeSession, StopReason, Tariff
from .services import (
    charge_session_complete,
    charge_session_record_progress,
    charge_session_start,
    charge_session_start_answer_record,
    tariff_applicable,
    tariff_create,
)


@dataclass
class DemoSeed:
    operator: Operator
    api_key: str


def demo_seed(*, name: str, admin_username: str, admin_password: str) -> DemoSeed:
    """The demo operator with its admin user, tariffs, simulator stations, terminals, sessions and a webhook
    subscription; a new API key on every run. The CPMS's answers to the demo sessions are recorded directly, so
    the data is complete without a running worker."""
    with transaction.atomic():
        operator = operator_demo_seed(name=name, admin_username=admin_username, admin_password=admin_password)
        _, fast_tariff = tariff_demo_seed(operator=operator)
        mapping_demo_seed(operator=operator)
        fast_station = StationMapping.objects.live().get(operator=operator, station_id=DEMO_STATIONS[1][0])
        if selectors.station_tariff_ids([fast_station.pk]).get(fast_station.pk) is None:
            mapping_update(mapping=fast_station, tariff_id=fast_tariff.pk)
        terminals = terminal_demo_seed(operator=operator)
    # Outside the transaction above: payment intents call the processor, which must not run under a lock.
    charge_session_demo_seed(operator=operator, terminals=terminals)
    # Last, so that the demo's own events are not queued for delivery to the demo endpoint.
    webhook_subscription_demo_seed(operator=operator)
    return DemoSeed(operator=operator, api_key=api_key_demo_create(operator=operator))


DEMO_DEFAULT_TARIFF = "Standard AC/DC"
DEMO_STATION_TARIFF = "HPC Fast Charging"


def tariff_demo_seed(*, operator: Operator) -> tuple[Tariff, Tariff]:
    """The demo operator's default tariff and a fast-charging tariff for one station (idempotent, by name)."""
    tariffs = {
        t.name: t for t in Tariff.objects.filter(operator=operator, name__in=[DEMO_DEFAULT_TARIFF, DEMO_STATION_TARIFF])
    }
    if DEMO_DEFAULT_TARIFF not in tariffs:
        tariffs[DEMO_DEFAULT_TARIFF] = tariff_create(
            operator=operator,
            name=DEMO_DEFAULT_TARIFF,
            currency="EUR",
            preauthorize_amount=5000,
            price_per_kwh=Decimal("0.4958"),
            price_per_minute=Decimal("0.0420"),
            session_fee=Decimal("0"),
            vat_rate_percent=Decimal("19.00"),
            is_default=True,
        )
    if DEMO_STATION_TARIFF not in tariffs:
        tariffs[DEMO_STATION_TARIFF] = tariff_create(
            operator=operator,
            name=DEMO_STATION_TARIFF,
            currency="EUR",
            preauthorize_amount=7500,
            price_per_kwh=Decimal("0.5798"),
            price_per_minute=Decimal("0"),
            session_fee=Decimal("0.4202"),
            vat_rate_percent=Decimal("19.00"),
        )
    return tariffs[DEMO_DEFAULT_TARIFF], tariffs[DEMO_STATION_TARIFF]


# (station, connector, terminal serial, card token, final energy in Wh or None for the running session)
DEMO_SESSIONS = (
    ("DE*EVP*S0001", "2", "DEMO-TRM-0001", "tok_visa", 18_420),
    ("DE*EVP*S0002", "1", "DEMO-TRM-0002", "tok_mastercard", 41_760),
    ("DE*EVP*S0001", "1", "DEMO-TRM-0001", "tok_amex", 27_035),
    ("DE*EVP*S0001", "1", "DEMO-TRM-0001", "tok_visa", None),
)


def charge_session_demo_seed(*, operator: Operator, terminals: dict[str, Terminal]) -> list[ChargeSession]:
    """Completed sessions (captured payment intents) and one running session, made only when the operator has no
    demo session yet. The CPMS's answers are recorded directly, so no worker is needed; the start commands queued
    by `charge_session_start` find their sessions answered and do nothing."""
    existing = list(ChargeSession.objects.filter(operator=operator, metadata__demo="true"))
    if existing:
        return existing
    sessions = []
    for station_id, connector_id, serial, token, energy_wh in DEMO_SESSIONS:
        terminal = terminals[serial]
        mapping = StationMapping.objects.live().get(operator=operator, station_id=station_id)
        intent = payment_services.payment_intent_create(
            operator=operator,
            amount=tariff_applicable(mapping).preauthorize_amount,
            currency="EUR",
            terminal=terminal,
            description=f"Charging at {station_id}",
            metadata={"demo": "true"},
        )
        payment_services.payment_intent_authorize(intent=intent, token=token)
        session = charge_session_start(
            operator=operator,
            terminal_id=terminal.pk,
            station_id=station_id,
            connector_id=connector_id,
            payment_intent_id=intent.pk,
            metadata={"demo": "true"},
        )
        session = charge_session_start_answer_record(
            session=session, result=CommandResult(CommandOutcome.ACCEPTED, cpms_session_id=f"SIM-{session.pk}")
        )
        if energy_wh is None:
            session = charge_session_record_progress(
                session=session, energy_wh=6_240, measured_at=timezone.now(), power_kw=Decimal("48.600")
            )
        else:
            session = charge_session_complete(session=session, energy_wh=energy_wh, stop_reason=StopReason.COMPLETED)
        sessions.append(session)
    return sessions
