"""ISO 4217 currencies and their minor-unit exponents; rounding to a currency's minor unit."""

from decimal import ROUND_HALF_UP, Decimal

MIN_AMOUNT = 1
MAX_AMOUNT = 99_999_999

_EXPONENT_OVERRIDES = {
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
_TWO_DECIMAL_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF
CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT
MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU
UZS VED VES WST XCD XCG YER ZAR ZMW ZWG
""".split()

CURRENCY_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_DECIMAL_CODES} | _EXPONENT_OVERRIDES


def is_known_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


def to_minor_units(major: Decimal, currency: str) -> int:
    """An amount in major units to whole minor units, half-up (`0.125` EUR -> 13 cents)."""
    scaled = Decimal(major) * (Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_major_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))
