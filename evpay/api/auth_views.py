from drf_spectacular.utils import extend_schema
from rest_framework_simplejwt import views as jwt_views

from evpay.api.views import EvpayAPIMixin


@extend_schema(tags=["auth"], auth=[])
class TokenObtainView(EvpayAPIMixin, jwt_views.TokenObtainPairView):
    """Exchange `{username, password}` of an operator user for `{access, refresh}` JWTs."""


@extend_schema(tags=["auth"], auth=[])
class TokenRefreshView(EvpayAPIMixin, jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access token."""
