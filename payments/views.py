from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from evpay.api.schema import ProblemSerializer
from evpay.api.views import OperatorScopedViewSet
from evpay.core.errors import NotFound
from evpay.core.queries import PreparedQuery

from . import services
from .filters import PaymentIntentFilterSet, RefundFilterSet
from .models import PaymentIntent, Refund
from .selectors import intent_uses, payment_intents_with_session_id
from .serializers import (
    PaymentIntentAuthorizeSerializer,
    PaymentIntentCaptureSerializer,
    PaymentIntentCreateSerializer,
    PaymentIntentSerializer,
    PaymentIntentVoidSerializer,
    RefundCreateSerializer,
    RefundSerializer,
)


class PaymentIntentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    queryset = PaymentIntent.objects.all()
    serializer_class = PaymentIntentSerializer
    filterset_class = PaymentIntentFilterSet
    scope_resource = "payments"
    single_commit_actions = frozenset({"create"})
    # With the paying session's id (the charging app's column): a read by id is one statement.
    object_query = PreparedQuery(
        lambda operator, pk: payment_intents_with_session_id(PaymentIntent.objects.filter(operator_id=operator, pk=pk)),
        "operator",
        "pk",
    )

    def page_context(self, objects) -> dict:
        return {"intent_uses": intent_uses(intent_ids=[i.pk for i in objects])}

    @extend_schema(request=PaymentIntentCreateSerializer, responses={201: PaymentIntentSerializer})
    def create(self, request):
        data = self.validated_input(PaymentIntentCreateSerializer)
        intent = services.payment_intent_create(
            operator=self.operator,
            amount=data["amount"],
            currency=data["currency"],
            terminal=data.get("terminal_id"),
            description=data["description"],
            metadata=data.get("metadata"),
        )
        return Response(PaymentIntentSerializer(intent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PaymentIntentAuthorizeSerializer,
        responses={
            200: PaymentIntentSerializer,
            402: ProblemSerializer,
            502: ProblemSerializer,
            503: ProblemSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def authorize(self, request, pk=None):
        intent, data = self.get_object(), self.validated_input(PaymentIntentAuthorizeSerializer)
        intent = services.payment_intent_authorize(intent=intent, token=data["payment_method"]["token"])
        return Response(PaymentIntentSerializer(intent).data)

    @extend_schema(
        request=PaymentIntentCaptureSerializer,
        responses={200: PaymentIntentSerializer, 502: ProblemSerializer, 503: ProblemSerializer},
    )
    @action(detail=True, methods=["post"])
    def capture(self, request, pk=None):
        intent, data = self.get_object(), self.validated_input(PaymentIntentCaptureSerializer)
        intent = services.payment_intent_capture(intent=intent, amount_to_capture=data.get("amount_to_capture"))
        return Response(PaymentIntentSerializer(intent).data)

    @extend_schema(
        request=PaymentIntentVoidSerializer,
        responses={200: PaymentIntentSerializer, 502: ProblemSerializer, 503: ProblemSerializer},
    )
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        intent, data = self.get_object(), self.validated_input(PaymentIntentVoidSerializer)
        intent = services.payment_intent_void(intent=intent, reason=data.get("reason"))
        return Response(PaymentIntentSerializer(intent).data)


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    queryset = Refund.objects.all()
    serializer_class = RefundSerializer
    filterset_class = RefundFilterSet
    scope_resource = "payments"

    @extend_schema(
        request=RefundCreateSerializer,
        responses={
            201: RefundSerializer,
            400: ProblemSerializer,
            404: ProblemSerializer,
            409: ProblemSerializer,
        },
        description=(
            "Refunds a captured payment intent, partially or in full, several times up to `amount_captured`. "
            "The answer is the refund: `succeeded`, `failed` (the processor refused it; `failure_reason` says "
            "why, the intent is unchanged) or `pending` (the processor did not answer; the refund keeps its "
            "amount reserved and is sent again with the same idempotency key until the processor answers; "
            "`refund.succeeded` or `refund.failed` tells the outcome). An unknown payment intent, or another "
            "operator's, is 404."
        ),
    )
    def create(self, request):
        data = self.validated_input(RefundCreateSerializer)
        intent = PaymentIntent.objects.filter(operator=self.operator, pk=data["payment_intent_id"]).first()
        if intent is None:
            raise NotFound(f"No payment intent {data['payment_intent_id']!r}.")
        refund = services.refund_create(
            intent=intent, amount=data.get("amount"), reason=data.get("reason"), metadata=data.get("metadata")
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
