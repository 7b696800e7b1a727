from evpay.api.routers import Router

from .views import EventViewSet, WebhookSubscriptionViewSet

router = Router()
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls

# The events API lives under /v1/ (as Stripe's /v1/events), the subscriptions under /api/v1/ (contract section 4).
events_router = Router()
events_router.register("events", EventViewSet, basename="event")

event_urlpatterns = events_router.urls
