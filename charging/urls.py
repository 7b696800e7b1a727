from evpay.api.routers import Router

from .views import ChargeSessionViewSet, TariffViewSet

router = Router()
router.register("tariffs", TariffViewSet, basename="tariff")
router.register("adhoc-charges", ChargeSessionViewSet, basename="adhoc-charge")

urlpatterns = router.urls
