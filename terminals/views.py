from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from evpay.api.views import OperatorScopedViewSet

from . import services
from .filters import TerminalFilterSet
from .models import Terminal
from .selectors import terminal_stats
from .serializers import (
    TerminalCreateSerializer,
    TerminalHealthEventCreateSerializer,
    TerminalHealthEventSerializer,
    TerminalSerializer,
    TerminalStatsSerializer,
    TerminalStatusSetSerializer,
)


class TerminalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    queryset = Terminal.objects.all()
    serializer_class = TerminalSerializer
    filterset_class = TerminalFilterSet
    scope_resource = "terminals"
    single_commit_actions = frozenset({"health_events"})

    def get_object(self):
        if self.action != "health_events" or not self._single_commit:
            return super().get_object()
        # The request is one transaction: the lookup takes the row lock the service needs (one statement
        # instead of a read and a locked read again). Addressed by its id alone, as every detail action.
        terminal = services.terminal_for_update(operator_id=self.operator.pk, terminal_id=self.kwargs["pk"])
        if terminal is None:
            raise Http404
        self.check_object_permissions(self.request, terminal)
        return terminal

    @extend_schema(
        request=TerminalCreateSerializer,
        responses={201: TerminalSerializer},
        description="Register a terminal. It is `offline` until its first health event. "
        "A serial number the operator has registered already -> 409 `terminal_exists`.",
    )
    def create(self, request):
        data = self.validated_input(TerminalCreateSerializer)
        terminal = services.terminal_register(operator=self.operator, **data)
        return Response(TerminalSerializer(terminal).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TerminalHealthEventCreateSerializer,
        responses={201: TerminalHealthEventSerializer},
        description="Record a health event. Sets `last_seen_at` to `occurred_at`. An offline terminal "
        "becomes online (except on `warning`, which changes no status); `error` and `tamper` "
        "make it faulted; `recovered` brings a faulted one online. Maintenance and "
        "decommissioned terminals keep their status. An event older than the newest one "
        "seen is stored but moves neither status nor health summary.",
    )
    @action(detail=True, methods=["post"], url_path="health-events")
    def health_events(self, request, pk=None):
        terminal, data = self.get_object(), self.validated_input(TerminalHealthEventCreateSerializer)
        event = services.terminal_health_event_record(terminal=terminal, locked=self._single_commit, **data)
        return Response(TerminalHealthEventSerializer(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TerminalStatusSetSerializer,
        responses={200: TerminalSerializer},
        description="Set an operator status. Setting the current status, or any status of a "
        "decommissioned terminal, is 409 `invalid_state`.",
    )
    @action(detail=True, methods=["put"], url_path="status")
    def set_status(self, request, pk=None):
        terminal, data = self.get_object(), self.validated_input(TerminalStatusSetSerializer)
        terminal = services.terminal_status_set(terminal=terminal, status=data["status"], reason=data["reason"])
        return Response(TerminalSerializer(terminal).data)

    @extend_schema(responses={200: TerminalStatsSerializer}, filters=False)
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def stats(self, request):
        return Response(terminal_stats(operator=self.operator))
