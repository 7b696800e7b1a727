from evpay.api.routers import Router

from .views import AdapterConfigViewSet, AdapterHealthViewSet, ConnectorViewSet, StationMappingViewSet

router = Router()
router.register("mappings", StationMappingViewSet, basename="station-mapping")
router.register("connectors", ConnectorViewSet, basename="connector")
router.register("adapters/health", AdapterHealthViewSet, basename="adapter-health")
router.register("config", AdapterConfigViewSet, basename="adapter-config")

urlpatterns = router.urls
