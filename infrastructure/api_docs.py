"""OpenAPI words and examples of the charging-infrastructure API (merged by evpay.api.docs)."""

from evpay.api.docs import Doc, page

CI = "/v1/charging-infrastructure"

CONNECTOR = {
    "connector_id": "1",
    "evse_uid": "DE*EVP*S0001*E1",
    "standard": "IEC_62196_T2_COMBO",
    "power_type": "DC",
    "max_power_kw": 150.0,
}
MAPPING = {
    "id": "map_XeN8cbUbW8IFM2FiHi9iIoef",
    "station_id": "DE*EVP*S0001",
    "adapter_type": "ocpi",
    "cpms_station_id": "LOC-1001",
    "tariff_id": "trf_EARgf5ScGQxtApEAV4A4HQqE",
    "is_active": True,
    "connectors": [CONNECTOR, {**CONNECTOR, "connector_id": "2", "evse_uid": "DE*EVP*S0001*E2"}],
    "last_connectivity_test": {
        "status": "succeeded",
        "latency_ms": 84,
        "error": None,
        "tested_at": "2026-11-23T09:05:00.000000Z",
    },
    "metadata": {"site": "Berlin Mitte"},
    "created_at": "2026-11-23T09:00:00.000000Z",
    "updated_at": "2026-11-23T09:00:00.000000Z",
}
MAPPING_WRITE = {
    "station_id": "DE*EVP*S0001",
    "adapter_type": "ocpi",
    "cpms_station_id": "LOC-1001",
    "tariff_id": "trf_EARgf5ScGQxtApEAV4A4HQqE",
    "connectors": MAPPING["connectors"],
    "metadata": {"site": "Berlin Mitte"},
}
CONFIG = {
    "adapter_type": "ocpi",
    "enabled": True,
    "base_url": "https://cpo.example.com/ocpi/versions",
    "timeout_ms": 10000,
    "max_retries": 2,
    "poll_interval_s": 60,
    "credentials_set": True,
    "updated_at": "2026-11-23T09:00:00.000000Z",
}

OPERATIONS = {
    f"GET {CI}/mappings": Doc(
        summary="List station mappings",
        description="Which CPMS runs each station, newest first, cursor-paginated. Filters: `station_id`, "
        "`adapter_type`, `is_active`, `created_after`, `created_before`.",
        response=page(MAPPING),
    ),
    f"POST {CI}/mappings": Doc(
        summary="Map a station to its CPMS",
        description="Maps a station (`station_id`, unique per operator: 409 `mapping_exists`) to a CPMS adapter "
        "(`simulator` or `ocpi`; unknown: 400) and the station's id there, with its connectors. `tariff_id` "
        "picks the tariff of its sessions (else the operator's default). The `simulator` reads the "
        "`cpms_station_id` prefix: `SIM-REJECT...` rejects starts and stops, `SIM-TIMEOUT...` times out, "
        "`SIM-FAIL...` fails every call.",
        request=MAPPING_WRITE,
        response={**MAPPING, "last_connectivity_test": None},
    ),
    f"GET {CI}/mappings/{{id}}": Doc(
        summary="Retrieve a station mapping", description="One mapping with its connectors.", response=MAPPING
    ),
    f"PATCH {CI}/mappings/{{id}}": Doc(
        summary="Update a station mapping",
        description="Changes the given fields; `connectors`, when given, replaces the list (matched by "
        "`connector_id`; kept connectors keep their status). Moving a station with a running session to another "
        "CPMS, or dropping its busy connector, is 409 `mapping_in_use`.",
        request={"tariff_id": "trf_EARgf5ScGQxtApEAV4A4HQqE", "is_active": True},
        response=MAPPING,
    ),
    f"DELETE {CI}/mappings/{{id}}": Doc(
        summary="Delete a station mapping",
        description="204; the mapping is kept for the sessions that used it but no longer listed. Refused with 409 "
        "`mapping_in_use` while a charge session runs on one of its connectors.",
    ),
    f"POST {CI}/mappings/{{id}}/test": Doc(
        summary="Test the CPMS connection",
        description="Queues a connectivity test (a ping of the station's CPMS adapter) and answers 202 with it "
        "(`status: pending`); the worker records the outcome in `last_connectivity_test` and emits "
        "`infrastructure.connectivity_tested`.",
        response={
            "mapping_id": MAPPING["id"],
            "status": "pending",
            "latency_ms": None,
            "error": None,
            "tested_at": None,
        },
    ),
    f"GET {CI}/connectors": Doc(
        summary="List connectors",
        description="One row per mapped connector with its OCPI EVSE status and the charge session running on it. "
        "Statuses come from polling each enabled adapter every `poll_interval_s`; OCPP 1.6 and 2.0.1 values are "
        "mapped onto OCPI (`Preparing`, `Charging`, `SuspendedEV`, `Occupied` -> `CHARGING`; `Unavailable` -> "
        "`INOPERATIVE`; `Faulted` -> `OUTOFORDER`); `UNKNOWN` until first reported. Filters: `station_id`, "
        "`status`, `adapter_type`.",
        response=page(
            {
                "mapping_id": MAPPING["id"],
                "station_id": "DE*EVP*S0001",
                **CONNECTOR,
                "status": "CHARGING",
                "status_updated_at": "2026-11-23T10:00:12.000000Z",
                "active_session_id": "chs_upFY4TsdlOkcTjiiavDExBDK",
            }
        ),
    ),
    f"GET {CI}/connectors/summary": Doc(
        summary="Connector summary",
        description="Counts of connectors by status and adapter, the number of stations and the share available.",
        response={
            "total": 4,
            "by_status": {
                "AVAILABLE": 2,
                "BLOCKED": 0,
                "CHARGING": 1,
                "INOPERATIVE": 0,
                "OUTOFORDER": 0,
                "PLANNED": 0,
                "REMOVED": 0,
                "RESERVED": 0,
                "UNKNOWN": 1,
            },
            "by_adapter": {"ocpi": 0, "simulator": 4},
            "stations": 3,
            "available_ratio": 0.5,
        },
    ),
    f"GET {CI}/adapters/health": Doc(
        summary="CPMS adapter health",
        description="One entry per adapter type (the list envelope, never a next page). `status`: `disabled` (not "
        "enabled), `down` (circuit open), `degraded` (circuit half-open, or a 5-minute error rate of at least "
        "CPMS_DEGRADED_ERROR_RATE), else `healthy`. Figures count calls made in the last 5 minutes.",
        response={
            "results": [
                {
                    "adapter_type": "simulator",
                    "enabled": True,
                    "status": "healthy",
                    "circuit": "closed",
                    "last_success_at": "2026-11-23T10:00:12.000000Z",
                    "last_failure_at": None,
                    "requests_5m": 31,
                    "error_rate_5m": 0.0,
                    "p95_latency_ms_5m": 3,
                    "mapped_stations": 3,
                }
            ],
            "next": None,
            "previous": None,
        },
    ),
    f"GET {CI}/config": Doc(
        summary="List CPMS adapter configurations",
        description="One entry per adapter type (the list envelope, never a next page). Credentials are "
        "write-only: only `credentials_set` shows.",
        response={"results": [CONFIG], "next": None, "previous": None},
    ),
    f"PATCH {CI}/config/{{adapter_type}}": Doc(
        summary="Configure a CPMS adapter",
        description="Changes the given fields of one adapter type (unknown type: 404). `credentials` are stored "
        "encrypted and never shown again; `credentials: null` removes them. Changing `enabled`, `base_url` or "
        "`credentials` closes the circuit.",
        request={
            "enabled": True,
            "base_url": "https://cpo.example.com/ocpi/versions",
            "timeout_ms": 10000,
            "credentials": {"token": "cpo-issued-token"},
        },
        response=CONFIG,
    ),
}

FIELDS = {
    "StationMapping": {
        "station_id": "Your id of the charging station (`DE*EVP*S0001`), unique per operator.",
        "adapter_type": "The CPMS adapter that runs the station: `simulator` or `ocpi`.",
        "cpms_station_id": "The station's id in the CPMS (an OCPI location id).",
        "tariff_id": "The tariff of sessions on this station; null: the operator's default.",
        "is_active": "Inactive mappings accept no new sessions.",
        "last_connectivity_test": "The outcome of the last `POST .../test`.",
    },
    "StationMappingWrite": {
        "station_id": "Your id of the charging station, unique per operator.",
        "cpms_station_id": "The station's id in the CPMS.",
        "tariff_id": "A tariff of yours; null: the operator's default.",
        "connectors": "Replaces the station's connectors (matched by `connector_id`).",
    },
    "Connector": {
        "connector_id": "The connector's id on the station (`1`, `2`, ...).",
        "evse_uid": "The OCPI EVSE uid.",
        "standard": "OCPI connector standard.",
        "max_power_kw": "Rated power.",
    },
    "ConnectorRow": {
        "status": "OCPI EVSE status, as last reported by the CPMS.",
        "status_updated_at": "When the CPMS last reported a different status.",
        "active_session_id": "The charge session running on the connector, if any.",
    },
    "AdapterConfig": {
        "base_url": "The CPMS endpoint (OCPI: the CPO's versions URL).",
        "timeout_ms": "Per call.",
        "max_retries": "Retries of a call that never reached the CPMS (commands are never sent twice).",
        "poll_interval_s": "How often connector statuses are polled (at least 10 s).",
        "credentials_set": "Whether credentials are stored (they are never shown).",
    },
    "AdapterConfigUpdate": {"credentials": "Write-only (`{token}` for OCPI); null removes them."},
    "AdapterHealth": {
        "circuit": "`closed` (calls go through), `open` (refused after repeated failures), `half_open` (one "
        "trial call).",
        "requests_5m": "Calls made to the CPMS in the last 5 minutes.",
        "error_rate_5m": "Failed or timed-out share of those calls.",
        "p95_latency_ms_5m": "95th percentile latency of those calls.",
        "mapped_stations": "Active stations mapped to this adapter.",
    },
}
