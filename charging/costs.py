"""The cost formula of contract section 2, in one pure function (Decimal throughout, no database).

    energy_cost = energy_wh / 1000 * price_per_kwh
    time_cost   = duration_seconds / 60 * price_per_minute
    subtotal    = round_half_up_to_minor_unit(energy_cost + time_cost + session_fee)
    vat         = round_half_up_to_minor_unit(subtotal * vat_rate_percent / 100)
    total       = subtotal + vat

Only the subtotal and the VAT are rounded in the formula; the energy, time and session-fee parts are shown
rounded each on its own, so they may differ from the subtotal by a minor unit.
"""

from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal

from evpay.core import money


@dataclass(frozen=True)
class Cost:
    energy: int
    time: int
    session_fee: int
    subtotal: int
    vat: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def cost_compute(
    *,
    currency: str,
    energy_wh: int,
    duration_seconds: int,
    price_per_kwh: Decimal,
    price_per_minute: Decimal,
    session_fee: Decimal,
    vat_rate_percent: Decimal,
) -> Cost:
    # Multiply before dividing: a terminating result (1.5 cents) stays exact, so half-up sees the true half.
    energy_cost = Decimal(energy_wh) * Decimal(price_per_kwh) / 1000
    time_cost = Decimal(duration_seconds) * Decimal(price_per_minute) / 60
    fee = Decimal(session_fee)
    subtotal = money.to_minor_units(energy_cost + time_cost + fee, currency)
    vat = _round_minor(Decimal(subtotal) * Decimal(vat_rate_percent) / 100)
    return Cost(
        energy=money.to_minor_units(energy_cost, currency),
        time=money.to_minor_units(time_cost, currency),
        session_fee=money.to_minor_units(fee, currency),
        subtotal=subtotal,
        vat=vat,
        total=subtotal + vat,
    )


def _round_minor(minor: Decimal) -> int:
    """A figure already in minor units, rounded half-up to a whole minor unit."""
    return int(minor.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_incl_vat(price: Decimal, vat_rate_percent: Decimal, *, places: int = 4) -> Decimal:
    """A unit price with VAT, for display (AFIR price transparency): half-up to `places` decimals."""
    gross = Decimal(price) * (1 + Decimal(vat_rate_percent) / 100)
    return gross.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
