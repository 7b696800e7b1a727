"""Terminals' demo data for `manage.py seed_demo` (composed by `charging.demo`), through the public services."""

import random
from datetime import timedelta

from django.utils import timezone

from evpay.core.models import Operator

from .models import HealthEventType, Terminal, TerminalStatus
from .services import terminal_health_event_record, terminal_register, terminal_status_set

# (serial, vendor, model, firmware, station, address, postal code, city, latitude, longitude)
DEMO_TERMINALS = (
    (
        "DEMO-TRM-0001",
        "Ingenico",
        "Self 4000",
        "4.2.1",
        "DE*EVP*S0001",
        "Invalidenstraße 117",
        "10115",
        "Berlin",
        52.5303,
        13.3844,
    ),
    (
        "DEMO-TRM-0002",
        "Worldline",
        "Valina",
        "3.11.0",
        "DE*EVP*S0002",
        "Leopoldstraße 64",
        "80802",
        "München",
        48.1596,
        11.5853,
    ),
    (
        "DEMO-TRM-0003",
        "CCV",
        "Smart-Vending",
        "1.9.4",
        "DE*EVP*S0003",
        "Am Sandtorkai 50",
        "20457",
        "Hamburg",
        53.5433,
        9.9911,
    ),
    ("DEMO-TRM-0004", "Payter", "Apollo", "2.7.0", None, "Deutzer Freiheit 98", "50679", "Köln", 50.9375, 6.9747),
    (
        "DEMO-TRM-0005",
        "Nayax",
        "VPOS Touch",
        "5.0.3",
        None,
        "Hanauer Landstraße 126",
        "60314",
        "Frankfurt am Main",
        50.1142,
        8.7094,
    ),
)
DEMO_MAINTENANCE_SERIAL = "DEMO-TRM-0005"


def terminal_demo_seed(*, operator: Operator) -> dict[str, Terminal]:
    """Demo terminals in Germany (idempotent, by serial number): online after a heartbeat, one with a warning,
    one in maintenance. Returns them by station id (those on a station) and serial number."""
    existing = {
        t.serial_number: t
        for t in Terminal.objects.filter(operator=operator, serial_number__in=[row[0] for row in DEMO_TERMINALS])
    }
    now = timezone.now()
    for serial, vendor, model, firmware, station, address, postal_code, city, lat, lon in DEMO_TERMINALS:
        if serial in existing:
            continue
        terminal = terminal_register(
            operator=operator,
            serial_number=serial,
            vendor=vendor,
            model=model,
            firmware_version=firmware,
            station_id=station,
            capabilities=["CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE", "PED_TERMINAL"],
            location={
                "address": address,
                "city": city,
                "postal_code": postal_code,
                "country": "DE",
                "latitude": lat,
                "longitude": lon,
            },
            metadata={"demo": "true"},
        )
        terminal_health_event_record(
            terminal=terminal,
            type=HealthEventType.REBOOT,
            occurred_at=now - timedelta(hours=2),
            message="Firmware update applied",
        )
        terminal_health_event_record(
            terminal=terminal,
            type=HealthEventType.HEARTBEAT,
            occurred_at=now - timedelta(minutes=1),
            metrics={"signal_strength_dbm": -67, "temperature_c": 31.5},
        )
        if serial == "DEMO-TRM-0003":
            terminal_health_event_record(
                terminal=terminal,
                type=HealthEventType.WARNING,
                occurred_at=now,
                code="PAPER_LOW",
                message="Receipt paper low",
            )
        if serial == DEMO_MAINTENANCE_SERIAL:
            terminal = terminal_status_set(
                terminal=terminal, status=TerminalStatus.MAINTENANCE, reason="Card reader replacement scheduled"
            )
        existing[serial] = terminal
    return existing


def terminal_demo_heartbeat() -> int:
    """One heartbeat from every demo terminal that is not decommissioned, as a live terminal sends each minute
    (`manage.py demo_heartbeats`, run by `make run`). Returns how many were sent."""
    serials = [row[0] for row in DEMO_TERMINALS]
    sent = 0
    for terminal in Terminal.objects.filter(serial_number__in=serials).exclude(status=TerminalStatus.DECOMMISSIONED):
        terminal_health_event_record(
            terminal=terminal,
            type=HealthEventType.HEARTBEAT,
            occurred_at=timezone.now(),
            metrics={
                "signal_strength_dbm": random.randint(-85, -55),
                "temperature_c": round(random.uniform(18, 38), 1),
            },
        )
        sent += 1
    return sent
