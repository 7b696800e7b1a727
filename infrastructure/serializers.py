from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evpay.api.fields import MetadataField
from evpay.api.serializers import Serializer

from .adapters.registry import adapter_types
from .models import AdapterHealth, CircuitState, ConnectivityTestStatus, OcpiStatus, PowerType, StationMapping
from .selectors import station_tariff_ids

# OCPI 2.2.1 ConnectorType.
CONNECTOR_STANDARDS = (
    "CHADEMO",
    "CHAOJI",
    "DOMESTIC_A",
    "DOMESTIC_B",
    "DOMESTIC_C",
    "DOMESTIC_D",
    "DOMESTIC_E",
    "DOMESTIC_F",
    "DOMESTIC_G",
    "DOMESTIC_H",
    "DOMESTIC_I",
    "DOMESTIC_J",
    "DOMESTIC_K",
    "DOMESTIC_L",
    "DOMESTIC_M",
    "DOMESTIC_N",
    "DOMESTIC_O",
    "GBT_AC",
    "GBT_DC",
    "IEC_60309_2_single_16",
    "IEC_60309_2_three_16",
    "IEC_60309_2_three_32",
    "IEC_60309_2_three_64",
    "IEC_62196_T1",
    "IEC_62196_T1_COMBO",
    "IEC_62196_T2",
    "IEC_62196_T2_COMBO",
    "IEC_62196_T3A",
    "IEC_62196_T3C",
    "NEMA_5_20",
    "NEMA_6_30",
    "NEMA_6_50",
    "NEMA_10_30",
    "NEMA_10_50",
    "NEMA_14_30",
    "NEMA_14_50",
    "PANTOGRAPH_BOTTOM_UP",
    "PANTOGRAPH_TOP_DOWN",
    "TESLA_R",
    "TESLA_S",
)


class KilowattField(serializers.DecimalField):
    """Power in kW: a JSON number out (events are stored as JSON), validated as a 2-decimal Decimal in."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=8, decimal_places=2, coerce_to_string=False, **kwargs)

    def to_representation(self, value):
        return float(super().to_representation(value))


class AdapterTypeField(serializers.ChoiceField):
    """One of the registered adapter types (the registry is read when the field is built)."""

    def __init__(self, **kwargs):
        super().__init__(choices=adapter_types(), **kwargs)


class ConnectorSerializer(Serializer):
    connector_id = serializers.CharField(max_length=36)
    evse_uid = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")
    standard = serializers.ChoiceField(choices=CONNECTOR_STANDARDS)
    power_type = serializers.ChoiceField(choices=PowerType.choices)
    max_power_kw = KilowattField(min_value=Decimal("0.01"))


@extend_schema_field(ConnectorSerializer(many=True))
class ConnectorListField(serializers.Field):
    """The full connector list of a station. Validated on its own, so PATCH (partial) still requires every
    field of every connector given."""

    def to_internal_value(self, data):
        serializer = ConnectorSerializer(data=data, many=True)
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        connectors = serializer.validated_data
        ids = [c["connector_id"] for c in connectors]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise serializers.ValidationError(f"connector_id must be unique within a station: {', '.join(duplicates)}.")
        return connectors

    def to_representation(self, value):
        return ConnectorSerializer(value, many=True).data


class ConnectivityTestSerializer(Serializer):
    status = serializers.ChoiceField(choices=ConnectivityTestStatus.choices)
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    tested_at = serializers.DateTimeField(allow_null=True)


class ConnectivityTestRequestSerializer(Serializer):
    """The 202 answer of POST /mappings/{id}/test: the queued test (`status: pending`)."""

    mapping_id = serializers.CharField(source="pk")
    status = serializers.CharField(source="connectivity_test_status")
    latency_ms = serializers.IntegerField(source="connectivity_test_latency_ms", allow_null=True)
    error = serializers.SerializerMethodField()
    tested_at = serializers.DateTimeField(source="connectivity_tested_at", allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, mapping):
        return mapping.connectivity_test_error or None


class StationMappingSerializer(serializers.ModelSerializer):
    """A mapping as the API shows it. `tariff_id` is kept by the charging app (`selectors.station_tariff_ids`):
    a list passes `tariff_ids` for its page in the context (one lookup), a single mapping looks it up."""

    tariff_id = serializers.SerializerMethodField()
    connectors = serializers.SerializerMethodField()
    last_connectivity_test = serializers.SerializerMethodField()

    class Meta:
        model = StationMapping
        fields = [
            "id",
            "station_id",
            "adapter_type",
            "cpms_station_id",
            "tariff_id",
            "is_active",
            "connectors",
            "last_connectivity_test",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_tariff_id(self, mapping) -> str | None:
        tariff_ids = self.context.get("tariff_ids")
        if tariff_ids is None:
            tariff_ids = station_tariff_ids(mapping_ids=[mapping.pk])
        return tariff_ids.get(mapping.pk)

    @extend_schema_field(ConnectorSerializer(many=True))
    def get_connectors(self, mapping):
        connectors = sorted(mapping.connectors.all(), key=lambda c: c.connector_id)  # prefetched by the views
        return ConnectorSerializer(connectors, many=True).data

    @extend_schema_field(ConnectivityTestSerializer(allow_null=True))
    def get_last_connectivity_test(self, mapping):
        if not mapping.connectivity_test_status:
            return None
        tested_at = mapping.connectivity_tested_at
        return {
            "status": mapping.connectivity_test_status,
            "latency_ms": mapping.connectivity_test_latency_ms,
            "error": mapping.connectivity_test_error or None,
            "tested_at": serializers.DateTimeField().to_representation(tested_at) if tested_at else None,
        }


class StationMappingWriteSerializer(Serializer):
    """Body of POST (all required but tariff_id, is_active, connectors, metadata) and PATCH (all optional).
    `connectors`, when given, replaces the station's connector list (matched by connector_id, so a kept
    connector keeps its status)."""

    station_id = serializers.CharField(max_length=100)
    adapter_type = AdapterTypeField()
    cpms_station_id = serializers.CharField(max_length=100)
    # Checked against the operator's tariffs by the service (the charging app keeps them).
    tariff_id = serializers.CharField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False, default=True)
    connectors = ConnectorListField(required=False)
    metadata = MetadataField()


class ConnectorRowSerializer(Serializer):
    """A row of GET /connectors. `active_session_id` comes from the view's context (one lookup per page)."""

    mapping_id = serializers.CharField()
    station_id = serializers.CharField(source="mapping.station_id")
    connector_id = serializers.CharField()
    evse_uid = serializers.CharField()
    status = serializers.ChoiceField(choices=OcpiStatus.choices)
    standard = serializers.CharField()
    power_type = serializers.ChoiceField(choices=PowerType.choices)
    max_power_kw = KilowattField()
    status_updated_at = serializers.DateTimeField(allow_null=True)
    active_session_id = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_active_session_id(self, connector):
        return self.context.get("active_sessions", {}).get((connector.mapping_id, connector.connector_id))


class ConnectorStatusChangedSerializer(ConnectorRowSerializer):
    """The event object of infrastructure.connector_status_changed."""

    previous_status = serializers.CharField(allow_null=True)


class ConnectorSummarySerializer(Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_adapter = serializers.DictField(child=serializers.IntegerField())
    stations = serializers.IntegerField()
    available_ratio = serializers.FloatField(allow_null=True)


class AdapterHealthSerializer(Serializer):
    adapter_type = serializers.CharField()
    enabled = serializers.BooleanField()
    status = serializers.ChoiceField(choices=AdapterHealth.choices)
    circuit = serializers.ChoiceField(choices=CircuitState.choices)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    requests_5m = serializers.IntegerField()
    error_rate_5m = serializers.FloatField(allow_null=True)
    p95_latency_ms_5m = serializers.IntegerField(allow_null=True)
    mapped_stations = serializers.IntegerField()


class AdapterConfigSerializer(Serializer):
    """Credentials are write-only: only whether they are set is shown."""

    adapter_type = serializers.CharField()
    enabled = serializers.BooleanField()
    base_url = serializers.CharField()
    timeout_ms = serializers.IntegerField()
    max_retries = serializers.IntegerField()
    poll_interval_s = serializers.IntegerField()
    credentials_set = serializers.BooleanField()
    registered = serializers.SerializerMethodField(
        help_text="ocpi only (null for other adapters): true once the OCPI credentials handshake with the CPO "
        "completed (PATCH /config/ocpi with the CPO's versions URL as base_url and its token A as "
        "credentials.token runs it)."
    )
    updated_at = serializers.DateTimeField(allow_null=True, help_text="null for an adapter type never configured.")

    def get_registered(self, config) -> bool | None:
        if config.adapter_type != "ocpi":
            return None
        try:
            registration = config.ocpi_registration
        except AttributeError:  # ObjectDoesNotExist is an AttributeError subclass of the related descriptor
            return False
        return registration.registered


class CredentialsSerializer(Serializer):
    token = serializers.CharField(max_length=2000, trim_whitespace=False)


class AdapterConfigUpdateSerializer(Serializer):
    """`credentials: null` removes the stored credentials."""

    enabled = serializers.BooleanField(required=False)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    timeout_ms = serializers.IntegerField(required=False, min_value=100, max_value=60000)
    max_retries = serializers.IntegerField(required=False, min_value=0, max_value=10)
    poll_interval_s = serializers.IntegerField(required=False, min_value=10, max_value=3600)
    credentials = CredentialsSerializer(required=False, allow_null=True, write_only=True)
