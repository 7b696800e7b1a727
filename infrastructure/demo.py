"""Infrastructure's demo data for `manage.py seed_demo` (composed by `charging.demo`), through the public
services."""

from decimal import Decimal

from evpay.core.models import Operator

from .models import StationMapping
from .services import mapping_create

DEMO_STATIONS = (
    ("DE*EVP*S0001", "SIM-DEMO-1", [("1", "DC", "IEC_62196_T2_COMBO", 150), ("2", "AC_3_PHASE", "IEC_62196_T2", 22)]),
    ("DE*EVP*S0002", "SIM-DEMO-2", [("1", "DC", "CHADEMO", 50)]),
    ("DE*EVP*S0003", "SIM-REJECT-DEMO", [("1", "AC_3_PHASE", "IEC_62196_T2", 11)]),
)


def mapping_demo_seed(*, operator: Operator) -> None:
    """Demo stations on the simulator (idempotent); the third one rejects every start, to show that path."""
    for station_id, cpms_station_id, connectors in DEMO_STATIONS:
        if StationMapping.objects.live().filter(operator=operator, station_id=station_id).exists():
            continue
        mapping_create(
            operator=operator,
            station_id=station_id,
            adapter_type="simulator",
            cpms_station_id=cpms_station_id,
            metadata={"demo": "true"},
            connectors=[
                {
                    "connector_id": cid,
                    "evse_uid": f"{station_id}*E{cid}",
                    "power_type": power,
                    "standard": standard,
                    "max_power_kw": Decimal(kw),
                }
                for cid, power, standard, kw in connectors
            ],
        )
