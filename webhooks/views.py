from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from evpay.api.views import OperatorScopedViewSet, ReadOnlyOperatorViewSet

from . import services
from .filters import EventFilterSet, WebhookDeliveryFilterSet, WebhookSubscriptionFilterSet
from .models import EVENT_TYPES, DeliveryStatus, Event, WebhookDelivery, WebhookSubscription
from .serializers import (
    EventRedeliveriesSerializer,
    EventRedeliverSerializer,
    EventSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionCreateSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionUpdatedSerializer,
    WebhookSubscriptionUpdateSerializer,
    WebhookSubscriptionWithSecretSerializer,
)


class WebhookSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    """Webhook subscriptions. Deliveries follow Standard Webhooks 1.0: `webhook-id` (the event id, the same on
    every retry), `webhook-timestamp`, `webhook-signature` (`v1,<base64>`; two, space separated, for 24 h after a
    secret rotation). 2xx is delivered; anything else, a timeout or a redirect (not followed) is retried at
    WEBHOOK_RETRY_SCHEDULE (+-20 % jitter); `Retry-After` on 429/503 waits at least the scheduled step and at
    most 24 h. 410 disables the subscription (`endpoint_gone`); failing for WEBHOOK_DISABLE_AFTER disables it
    (`too_many_failures`). At-least-once, unordered: de-duplicate by `webhook-id`."""

    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    filterset_class = WebhookSubscriptionFilterSet
    scope_resource = "webhooks"

    @extend_schema(
        request=WebhookSubscriptionCreateSerializer, responses={201: WebhookSubscriptionWithSecretSerializer}
    )
    def create(self, request):
        data = self.validated_input(WebhookSubscriptionCreateSerializer)
        subscription = services.webhook_subscription_create(operator=self.operator, **data)
        return Response(WebhookSubscriptionWithSecretSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=WebhookSubscriptionUpdateSerializer,
        responses={200: WebhookSubscriptionUpdatedSerializer},
        description="Replaces url and event types. `secret` is in the response only with rotate_secret.",
    )
    def update(self, request, pk=None):
        subscription, data = self.get_object(), self.validated_input(WebhookSubscriptionUpdateSerializer)
        subscription = services.webhook_subscription_update(subscription=subscription, **data)
        serializer = WebhookSubscriptionWithSecretSerializer if data["rotate_secret"] else WebhookSubscriptionSerializer
        return Response(serializer(subscription).data)

    @extend_schema(responses={204: None}, description="Deactivates; the subscription and its deliveries stay readable.")
    def destroy(self, request, pk=None):
        services.webhook_subscription_deactivate(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        filters=False,
        responses={200: WebhookDeliverySerializer(many=True)},
        parameters=[
            OpenApiParameter("status", enum=DeliveryStatus.values),
            OpenApiParameter("event_type", enum=EVENT_TYPES),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
        ],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        # The filterset is applied here, not through the action: get_object() filters subscriptions with it.
        deliveries = WebhookDelivery.objects.filter(subscription=self.get_object()).prefetch_related("attempts")
        filterset = WebhookDeliveryFilterSet(request.query_params, queryset=deliveries, request=request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        description="Delivers a `webhook.test` event to this subscription only; 409 when inactive.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.webhook_test_send(subscription=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventViewSet(ReadOnlyOperatorViewSet):
    """Every event of the operator (the outbox the webhooks are sent from), kept EVENT_RETENTION_DAYS, so that a
    receiver that missed some can reconcile: list what happened, read it, have it sent again."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    scope_resource = "webhooks"

    @extend_schema(request=EventRedeliverSerializer, responses={202: EventRedeliveriesSerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        event, data = self.get_object(), self.validated_input(EventRedeliverSerializer)
        subscription = None
        if "subscription_id" in data:
            subscription = WebhookSubscription.objects.filter(
                operator=self.operator, pk=data["subscription_id"]
            ).first()
            if subscription is None:
                raise ValidationError({"subscription_id": ["No webhook subscription with this id."]})
        deliveries = services.event_redeliver(event=event, subscription=subscription)
        body = EventRedeliveriesSerializer({"deliveries": deliveries}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)
