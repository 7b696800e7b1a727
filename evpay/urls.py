from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from evpay.api.auth_views import TokenObtainView, TokenRefreshView
from evpay.health import DetailedHealthView, HealthView, LiveView, ReadyView
from evpay.metrics import metrics_view
from webhooks.urls import event_urlpatterns

handler404 = "evpay.api.errors.handler404"
handler500 = "evpay.api.errors.handler500"

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    re_path(r"^health/live/?$", LiveView.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", ReadyView.as_view(), name="health-ready"),
    re_path(r"^health/detailed/?$", DetailedHealthView.as_view(), name="health-detailed"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^v1/auth/token/?$", TokenObtainView.as_view(), name="token-obtain"),
    re_path(r"^v1/auth/token/refresh/?$", TokenRefreshView.as_view(), name="token-refresh"),
    path("v1/", include("payments.urls")),
    path("v1/", include("terminals.urls")),
    path("v1/", include("charging.urls")),
    path("v1/", include(event_urlpatterns)),
    path("v1/charging-infrastructure/", include("infrastructure.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("ocpi/", include("infrastructure.emsp.urls")),
]
