from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from evpay.api.views import OperatorScopedViewSet
from evpay.core.errors import NotFound

from . import selectors, services
from .adapters.registry import adapter_types, is_adapter_type
from .emsp.services import adapter_config_update_or_register
from .filters import ConnectorFilterSet, StationMappingFilterSet
from .models import AdapterConfig, Connector, StationMapping
from .serializers import (
    AdapterConfigSerializer,
    AdapterConfigUpdateSerializer,
    AdapterHealthSerializer,
    ConnectivityTestRequestSerializer,
    ConnectorRowSerializer,
    ConnectorSummarySerializer,
    StationMappingSerializer,
    StationMappingWriteSerializer,
)

_ADAPTER_TYPE = "adapter_type"


def fixed_list(serializer_class):
    """The list envelope of every list, for lists with one entry per adapter type (never a next page)."""
    return inline_serializer(
        f"{serializer_class.__name__.removesuffix('Serializer')}List",
        {
            "results": serializer_class(many=True),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
        },
    )


class StationMappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    """Station-CPMS mappings: which CPMS (`adapter_type`: `simulator` or `ocpi`) runs a station, and the
    station's id there. `station_id` is unique per operator (409 `mapping_exists`); an unknown `adapter_type`
    is a 400. PATCH changes the given fields; `connectors`, when given, replaces the list (matched by
    `connector_id`, kept connectors keep their status). DELETE (204) is refused with 409 `mapping_in_use`
    while a charge session runs on one of the station's connectors, as are PATCHes that would move such a
    station to another CPMS or drop that connector.

    The `simulator` adapter reads the `cpms_station_id` prefix: `SIM-REJECT...` rejects starts and stops,
    `SIM-TIMEOUT...` times out every call, `SIM-FAIL...` fails every call."""

    queryset = StationMapping.objects.live().prefetch_related(Prefetch("connectors", Connector.objects.all()))
    serializer_class = StationMappingSerializer
    filterset_class = StationMappingFilterSet
    scope_resource = "infrastructure"

    @extend_schema(request=StationMappingWriteSerializer, responses={201: StationMappingSerializer})
    def create(self, request):
        data = self.validated_input(StationMappingWriteSerializer)
        mapping = services.mapping_create(
            operator=self.operator,
            station_id=data["station_id"],
            adapter_type=data["adapter_type"],
            cpms_station_id=data["cpms_station_id"],
            tariff_id=data.get("tariff_id"),
            is_active=data["is_active"],
            connectors=data.get("connectors", []),
            metadata=data.get("metadata"),
        )
        return Response(self._render(mapping), status=status.HTTP_201_CREATED)

    @extend_schema(request=StationMappingWriteSerializer, responses={200: StationMappingSerializer})
    def partial_update(self, request, pk=None):
        mapping, data = self.get_object(), self.validated_input(StationMappingWriteSerializer, partial=True)
        return Response(self._render(services.mapping_update(mapping=mapping, **data)))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.mapping_delete(mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={202: ConnectivityTestRequestSerializer},
        description="Queues a connectivity test and answers with it (`status: pending`). The worker "
        "records `succeeded` or `failed` with latency in the mapping's "
        "`last_connectivity_test` and emits `infrastructure.connectivity_tested`.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        mapping = services.mapping_connectivity_test_request(mapping=self.get_object())
        return Response(ConnectivityTestRequestSerializer(mapping).data, status=status.HTTP_202_ACCEPTED)

    def page_context(self, objects) -> dict:
        return {"tariff_ids": selectors.station_tariff_ids(mapping_ids=[m.pk for m in objects])}

    def _render(self, mapping):
        return StationMappingSerializer(self.get_queryset().get(pk=mapping.pk)).data


class ConnectorViewSet(mixins.ListModelMixin, OperatorScopedViewSet):
    """One row per mapped connector, with its OCPI EVSE status and the charge session running on it.
    Statuses come from polling each enabled adapter every `poll_interval_s`; OCPP 1.6 values (Preparing,
    Charging, SuspendedEV, SuspendedEVSE, Finishing -> CHARGING; Unavailable -> INOPERATIVE; Faulted ->
    OUTOFORDER) and OCPP 2.0.1 values (Occupied -> CHARGING) are mapped; `UNKNOWN` until first reported."""

    queryset = selectors.live_connectors().select_related("mapping")
    serializer_class = ConnectorRowSerializer
    filterset_class = ConnectorFilterSet
    scope_resource = "infrastructure"

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        sessions = selectors.active_sessions_by_connector(mapping_ids=[c.mapping_id for c in page])
        return self.get_paginated_response(
            ConnectorRowSerializer(page, many=True, context={"active_sessions": sessions}).data
        )

    @extend_schema(responses={200: ConnectorSummarySerializer}, filters=False)
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def summary(self, request):
        return Response(selectors.connector_summary(operator_id=self.operator.pk))


class AdapterHealthViewSet(OperatorScopedViewSet):
    """One entry per adapter type, in the list envelope (never a next page). `status`: `disabled` (not
    enabled), `down` (circuit open), `degraded` (circuit half-open, or 5-minute error rate at least
    CPMS_DEGRADED_ERROR_RATE), else `healthy`. Figures count calls made to the CPMS in the last 5 minutes
    (calls refused by an open circuit are not requests); errors are failures and timeouts."""

    queryset = AdapterConfig.objects.all()
    serializer_class = AdapterHealthSerializer
    scope_resource = "infrastructure"
    pagination_class = None

    @extend_schema(responses={200: fixed_list(AdapterHealthSerializer)})
    def list(self, request):
        entries = selectors.adapter_health(operator_id=self.operator.pk)
        return Response({"results": AdapterHealthSerializer(entries, many=True).data, "next": None, "previous": None})


class AdapterConfigViewSet(OperatorScopedViewSet):
    """Adapter configuration per adapter type (GET: the list envelope, one entry per type, never a next page).
    Credentials are write-only: only `credentials_set` shows; `credentials: null` removes them. Changing
    `enabled`, `base_url` or `credentials` closes the circuit."""

    queryset = AdapterConfig.objects.all()
    serializer_class = AdapterConfigSerializer
    scope_resource = "infrastructure"
    pagination_class = None
    lookup_field = _ADAPTER_TYPE

    @extend_schema(responses={200: fixed_list(AdapterConfigSerializer)})
    def list(self, request):
        configs = selectors.adapter_configs(operator_id=self.operator.pk)
        return Response({"results": AdapterConfigSerializer(configs, many=True).data, "next": None, "previous": None})

    @extend_schema(
        request=AdapterConfigUpdateSerializer,
        responses={200: AdapterConfigSerializer},
        parameters=[
            OpenApiParameter(
                _ADAPTER_TYPE,
                str,
                OpenApiParameter.PATH,
                enum=adapter_types(),
                description="An unknown adapter type is a 404.",
            )
        ],
    )
    def partial_update(self, request, adapter_type=None):
        if not is_adapter_type(adapter_type):  # the path first: an unknown type is 404 whatever the body
            raise NotFound(f"No adapter type {adapter_type!r}; one of: {', '.join(adapter_types())}.")
        data = self.validated_input(AdapterConfigUpdateSerializer)
        config = adapter_config_update_or_register(operator=self.operator, adapter_type=adapter_type, **data)
        return Response(AdapterConfigSerializer(config).data)
