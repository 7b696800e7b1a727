from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from evpay.api.auth_views import TokenObtainView, TokenRefreshView
from evpay.health import DetailedHealthView, HealthView, LiveView, ReadyView
from evpay.metrics import metrics_view
from webhooks.urls import event_urlpatterns

handler404 = "evpay.api.errors.handler404"
handler500 = "evpay.api.errors.handler500"

# The API first, under one prefix: a request's path is matched against the patterns in order, and an API
# request (nearly every request) need not try the admin's, the health checks' and the docs' patterns first.
v1_patterns: list[URLPattern | URLResolver] = [
    path("", include("payments.urls")),
    path("", include("terminals.urls")),
    path("", include("charging.urls")),
    path("", include(event_urlpatterns)),
    path("charging-infrastructure/", include("infrastructure.urls")),
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="token-obtain"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshView.as_view(), name="token-refresh"),
]

urlpatterns = [
    path("v1/", include(v1_patterns)),
    path("admin/", admin.site.urls),
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    re_path(r"^health/live/?$", LiveView.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", ReadyView.as_view(), name="health-ready"),
    re_path(r"^health/detailed/?$", DetailedHealthView.as_view(), name="health-detailed"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("webhooks.urls")),
    path("ocpi/", include("infrastructure.emsp.urls")),
]
