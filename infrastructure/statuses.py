"""Connector status values a CPMS may report (OCPP 1.6, OCPP 2.0.1, OCPI) mapped onto the OCPI EVSE
statuses the API shows. This table is the one place the mapping is defined."""

from .models import OcpiStatus

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"
OCPI = "ocpi"
PROTOCOLS = (OCPP16, OCPP201, OCPI)

S = OcpiStatus
# (protocol, raw value) -> OCPI status. OCPP's transaction phases (Preparing, Suspended*, Finishing)
# all mean "a vehicle holds the connector in a session", which OCPI shows as CHARGING.
STATUS_TABLE: dict[tuple[str, str], str] = {
    # OCPP 1.6 ChargePointStatus
    (OCPP16, "Available"): S.AVAILABLE,
    (OCPP16, "Preparing"): S.CHARGING,
    (OCPP16, "Charging"): S.CHARGING,
    (OCPP16, "SuspendedEVSE"): S.CHARGING,
    (OCPP16, "SuspendedEV"): S.CHARGING,
    (OCPP16, "Finishing"): S.CHARGING,
    (OCPP16, "Reserved"): S.RESERVED,
    (OCPP16, "Unavailable"): S.INOPERATIVE,
    (OCPP16, "Faulted"): S.OUTOFORDER,
    # OCPP 2.0.1 ConnectorStatusEnumType
    (OCPP201, "Available"): S.AVAILABLE,
    (OCPP201, "Occupied"): S.CHARGING,
    (OCPP201, "Reserved"): S.RESERVED,
    (OCPP201, "Unavailable"): S.INOPERATIVE,
    (OCPP201, "Faulted"): S.OUTOFORDER,
    # OCPI 2.2.1 Status: already ours
    **{(OCPI, status.value): status.value for status in OcpiStatus},
}

_CASEFOLDED = {(protocol, raw.casefold()): status for (protocol, raw), status in STATUS_TABLE.items()}


def to_ocpi_status(*, protocol: str, raw_status: str | None) -> str:
    """The OCPI status for a reported value; anything not in the table is UNKNOWN (never an error:
    one odd value from a CPMS must not stop a poll)."""
    if not raw_status:
        return S.UNKNOWN
    return _CASEFOLDED.get((protocol, raw_status.strip().casefold()), S.UNKNOWN)
