"""The cost formula (contract section 2) against hand-computed totals, half-up boundaries included."""

from decimal import Decimal

import pytest

from charging.costs import Cost, cost_compute, price_incl_vat

# (id, currency, energy_wh, duration_seconds, price_per_kwh, price_per_minute, session_fee, vat %,
#  expected (energy, time, session_fee, subtotal, vat, total)), worked out by hand in the comment.
CASES = [
    # 12.345 kWh * 0.59 = 7.28355 EUR -> 728 cents; no VAT.
    ("energy only", "EUR", 12345, 0, "0.59", "0", "0", "0", (728, 0, 0, 728, 0, 728)),
    # 30 min * 0.10 = 3.00 -> 300; VAT 19 % = 57 -> 357.
    ("time only", "EUR", 0, 1800, "0", "0.10", "0", "19", (0, 300, 0, 300, 57, 357)),
    # fee 1.50 -> 150; VAT 21 % = 31.5 -> 32 (half-up) -> 182.
    ("session fee only", "EUR", 0, 0, "0", "0", "1.50", "21", (0, 0, 150, 150, 32, 182)),
    # 10 kWh * 0.45 = 4.50; 10 min * 0.05 = 0.50; fee 1.00 -> 600; VAT 19 % = 114 -> 714.
    ("all three", "EUR", 10000, 600, "0.45", "0.05", "1.00", "19", (450, 50, 100, 600, 114, 714)),
    # 0.001 kWh * 5 = 0.005 EUR = 0.5 cent -> 1 (half-up; half-even would give 0).
    ("energy half cent rounds up", "EUR", 1, 0, "5", "0", "0", "0", (1, 0, 0, 1, 0, 1)),
    # 0.001 kWh * 4.9999 = 0.0049999 EUR -> 0 cents.
    ("just below half rounds down", "EUR", 1, 0, "4.9999", "0", "0", "0", (0, 0, 0, 0, 0, 0)),
    # 20 s * 0.015 / 60 = 0.005 EUR exactly -> 1 cent (the 1/3 of a minute must not lose the half).
    ("time half cent rounds up", "EUR", 0, 20, "0", "0.015", "0", "0", (0, 1, 0, 1, 0, 1)),
    # parts 0.004 + 0.004 = 0.008 EUR -> subtotal 1 cent although each part alone rounds to 0.
    ("subtotal rounds the unrounded sum", "EUR", 1, 60, "4", "0.004", "0", "0", (0, 0, 0, 1, 0, 1)),
    # subtotal 50; VAT 21 % = 10.5 -> 11 (half-up) -> 61.
    ("VAT half rounds up", "EUR", 0, 0, "0", "0", "0.50", "21", (0, 0, 50, 50, 11, 61)),
    # subtotal 150; VAT 19 % = 28.5 -> 29 -> 179.
    ("VAT 19 half rounds up", "EUR", 0, 0, "0", "0", "1.50", "19", (0, 0, 150, 150, 29, 179)),
    # subtotal 12; VAT 21 % = 2.52 -> 3; VAT 19 % of 13 = 2.47 -> 2.
    ("VAT 21 small", "EUR", 0, 0, "0", "0", "0.12", "21", (0, 0, 12, 12, 3, 15)),
    ("VAT 19 below half", "EUR", 0, 0, "0", "0", "0.13", "19", (0, 0, 13, 13, 2, 15)),
    # JPY (no minor unit): 12.345 kWh * 35 = 432.075; 1.5 min * 10 = 15; fee 100 -> 547.075 -> 547;
    # VAT 19 % = 103.93 -> 104 -> 651.
    ("JPY all three", "JPY", 12345, 90, "35", "10", "100", "19", (432, 15, 100, 547, 104, 651)),
    # JPY: 0.5 kWh * 1 = 0.5 yen -> 1; VAT 0.
    ("JPY half yen rounds up", "JPY", 500, 0, "1", "0", "0", "0", (1, 0, 0, 1, 0, 1)),
    # JPY: subtotal 50, VAT 21 % = 10.5 -> 11.
    ("JPY VAT half", "JPY", 0, 0, "0", "0", "50", "21", (0, 0, 50, 50, 11, 61)),
    # KWD (3 decimals): 20 kWh * 0.0125 = 0.250 -> 250 fils; 5 min * 0.002 = 0.010 -> 10; fee 0.100 -> 100;
    # subtotal 360; VAT 21 % = 75.6 -> 76 -> 436.
    ("KWD all three", "KWD", 20000, 300, "0.0125", "0.002", "0.1", "21", (250, 10, 100, 360, 76, 436)),
    # KWD: 1 kWh * 0.0005 = 0.0005 KWD = 0.5 fils -> 1.
    ("KWD half fils rounds up", "KWD", 1000, 0, "0.0005", "0", "0", "0", (1, 0, 0, 1, 0, 1)),
    ("nothing", "EUR", 0, 0, "0.59", "0.10", "0", "19", (0, 0, 0, 0, 0, 0)),
]


@pytest.mark.parametrize(
    "currency,energy_wh,duration,kwh,minute,fee,vat,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_cost_table(currency, energy_wh, duration, kwh, minute, fee, vat, expected):
    cost = cost_compute(
        currency=currency,
        energy_wh=energy_wh,
        duration_seconds=duration,
        price_per_kwh=Decimal(kwh),
        price_per_minute=Decimal(minute),
        session_fee=Decimal(fee),
        vat_rate_percent=Decimal(vat),
    )
    assert cost == Cost(*expected)
    assert cost.total == cost.subtotal + cost.vat
    assert all(isinstance(v, int) for v in cost.as_dict().values())


@pytest.mark.parametrize(
    "price,vat,places,expected",
    [
        ("0.59", "19", 4, "0.7021"),
        ("0.10", "21", 4, "0.1210"),
        ("1.50", "21", 2, "1.82"),
        ("0.5", "0", 4, "0.5000"),
        ("0.00005", "0", 4, "0.0001"),
        ("100", "10", 0, "110"),
    ],
)
def test_display_price_including_vat(price, vat, places, expected):
    assert f"{price_incl_vat(Decimal(price), Decimal(vat), places=places):f}" == expected
