from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from evpay.api.throttling import auth_failure_record, client_address, refuse_if_throttled
from evpay.api.views import EvpayAPIMixin


class FailedAttemptsThrottledMixin:
    """Refused with 429 before the credentials are checked once the client address (or the username) has used
    up its failed attempts; every 401 counts as one."""

    credentials_checked = True  # the schema documents their 401 and 429

    def credential_of(self, request) -> str | None:
        return None

    def post(self, request, *args, **kwargs):
        address, credential = client_address(request), self.credential_of(request)
        refuse_if_throttled(address=address, credential=credential)
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            auth_failure_record(address=address, credential=credential)
            raise


@extend_schema(tags=["auth"], auth=[])
class TokenObtainView(FailedAttemptsThrottledMixin, EvpayAPIMixin, jwt_views.TokenObtainPairView):
    """Exchange `{username, password}` of an operator user for `{access, refresh}` JWTs."""

    def credential_of(self, request) -> str | None:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        return f"user:{username.lower()}" if isinstance(username, str) and username else None


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """A refresh token of a user that is gone, inactive or whose password changed since is refused (401)."""

    def validate(self, attrs):
        from evpay.core.models import User

        refresh = RefreshToken(attrs["refresh"])
        user = User.objects.filter(
            **{jwt_settings.USER_ID_FIELD: refresh.payload.get(jwt_settings.USER_ID_CLAIM)}
        ).first()
        if (
            user is None
            or not user.is_active
            or refresh.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password)
        ):
            raise exceptions.AuthenticationFailed("No active account for this token.", "no_active_account")
        return super().validate(attrs)


@extend_schema(tags=["auth"], auth=[])
class TokenRefreshView(FailedAttemptsThrottledMixin, EvpayAPIMixin, jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access token."""

    serializer_class = TokenRefreshSerializer
