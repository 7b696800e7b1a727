from evpay.api.routers import Router

from .views import TerminalViewSet

router = Router()
router.register("terminals", TerminalViewSet, basename="terminal")

urlpatterns = router.urls
