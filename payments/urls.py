from evpay.api.routers import Router

from .views import PaymentIntentViewSet, RefundViewSet

router = Router()
router.register("payment-intents", PaymentIntentViewSet, basename="payment-intent")
router.register("refunds", RefundViewSet, basename="refund")

urlpatterns = router.urls
