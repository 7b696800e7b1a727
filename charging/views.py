from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from evpay.api.schema import ProblemSerializer
from evpay.api.views import OperatorScopedViewSet
from evpay.core.errors import NotFound

from . import services
from .filters import ChargeSessionFilterSet
from .models import ChargeSession, Tariff
from .selectors import connector_lookup, running_sessions
from .serializers import (
    ChargeSessionCompleteSerializer,
    ChargeSessionProgressSerializer,
    ChargeSessionSerializer,
    ChargeSessionStartSerializer,
    QuoteQuerySerializer,
    QuoteSerializer,
    TariffSerializer,
    quote_data,
)


class TariffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    queryset = Tariff.objects.all()
    serializer_class = TariffSerializer
    scope_resource = "charges"

    @extend_schema(request=TariffSerializer, responses={201: TariffSerializer})
    def create(self, request):
        tariff = services.tariff_create(operator=self.operator, **self.validated_input(TariffSerializer))
        return Response(TariffSerializer(tariff).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TariffSerializer, responses={200: TariffSerializer})
    def partial_update(self, request, pk=None):
        tariff, changes = self.get_object(), self.validated_input(TariffSerializer, partial=True)
        return Response(TariffSerializer(services.tariff_update(tariff=tariff, **changes)).data)


class ChargeSessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    queryset = ChargeSession.objects.select_related("payment_intent")
    serializer_class = ChargeSessionSerializer
    filterset_class = ChargeSessionFilterSet
    scope_resource = "charges"
    # A reading calls nothing outside the database (a stop command it may trigger is sent after the commit).
    single_commit_actions = frozenset({"progress"})

    def get_object(self):
        if self.action != "progress" or not self._single_commit:
            return super().get_object()
        # The request is one transaction: the lookup takes the row lock the service needs (one statement
        # instead of a read and a locked read again). Addressed by its id alone, as every detail action.
        session = services.charge_session_for_update(operator_id=self.operator.pk, session_id=self.kwargs["pk"])
        if session is None:
            raise Http404
        self.check_object_permissions(self.request, session)
        return session

    @extend_schema(
        request=ChargeSessionStartSerializer,
        responses={201: ChargeSessionSerializer},
        description=(
            "Start an ad-hoc session: 201 `pending`; the start command goes to the CPMS asynchronously. 400 for an "
            "unknown terminal, intent or connector (not on an active mapping); 409 `payment_intent_unusable`, "
            "`connector_unavailable`, `terminal_unavailable`, or `invalid_state` when no tariff applies."
        ),
    )
    @action(detail=False, methods=["post"])
    def start(self, request):
        data = self.validated_input(ChargeSessionStartSerializer)
        session = services.charge_session_start(operator=self.operator, **data)
        return Response(ChargeSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[QuoteQuerySerializer],
        responses={200: QuoteSerializer, 400: ProblemSerializer, 404: ProblemSerializer, 409: ProblemSerializer},
        description="What the terminal shows before the tap (AFIR price transparency). 400 without both "
        "parameters; 404 for a connector not on an active mapping; 409 `invalid_state` when no tariff "
        "applies.",
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def quote(self, request):
        query = QuoteQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        connector = connector_lookup(operator_id=self.operator.pk, **query.validated_data)
        if connector is None:
            raise NotFound(
                f"No connector {query.validated_data['connector_id']!r} on an active mapping of station "
                f"{query.validated_data['station_id']!r}."
            )
        tariff = services.tariff_applicable(connector.mapping)
        busy = (connector.mapping_id, connector.connector_id) in running_sessions([connector.mapping_id])
        return Response(quote_data(connector=connector, tariff=tariff, busy=busy))

    @extend_schema(
        request=ChargeSessionProgressSerializer,
        responses={200: ChargeSessionSerializer},
        description="A cumulative reading. Older than the last one: 200, unchanged. Less energy with "
        "a newer `measured_at`: 400 `energy_decreased`. Ended session: 409.",
    )
    @action(detail=True, methods=["put"])
    def progress(self, request, pk=None):
        session, data = self.get_object(), self.validated_input(ChargeSessionProgressSerializer)
        session = services.charge_session_record_progress(session=session, locked=self._single_commit, **data)
        return Response(ChargeSessionSerializer(session).data)

    @extend_schema(
        request=ChargeSessionCompleteSerializer,
        responses={200: ChargeSessionSerializer},
        description="Completes the session and captures min(total, preauth_amount) (a total of 0 voids "
        "the intent). If the capture fails the session is still `completed`, the intent "
        "stays `authorized` and a retry is scheduled.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        session, data = self.get_object(), self.validated_input(ChargeSessionCompleteSerializer)
        session = services.charge_session_complete(session=session, **{k: v for k, v in data.items() if v is not None})
        return Response(ChargeSessionSerializer(session).data)
