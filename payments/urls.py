from evpay.api.routers import Router

from .views import PaymentIntentViewSet

router = Router()
router.register("payment-intents", PaymentIntentViewSet, basename="payment-intent")

urlpatterns = router.urls
