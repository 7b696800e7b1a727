from evpay.api.routers import Router

from .views import WebhookSubscriptionViewSet

router = Router()
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
