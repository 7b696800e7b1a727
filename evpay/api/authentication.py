"""`X-API-Key` and `Authorization: Bearer <JWT>`; both end in a principal with `.operator` and `.scopes`."""

import hmac
from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from evpay.api.throttling import CredentialRateThrottle, auth_failed, count_and_read
from evpay.core.models import ApiKey, Operator, User
from evpay.core.selectors import API_KEYS, api_key_for_prefix
from evpay.logging import bind_context


@dataclass(frozen=True)
class ApiKeyPrincipal:
    api_key: ApiKey
    operator: Operator
    scopes: frozenset[str]
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def credential_id(self) -> str:
        return f"key:{self.api_key.pk}"

    pk = credential_id

    @property
    def throttle_ident(self) -> str:
        # As `count_and_read` counted it before the key was known.
        return _throttle_ident(self.api_key.key_hash)


def _throttle_ident(key_hash: str) -> str:
    """An API key's rate-limit bucket: by the hash of the secret presented (see `count_and_read`)."""
    return f"keyhash:{key_hash}"


def _counts_credentials(request) -> bool:
    """Whether the view limits each credential's rate (every API view but the public health checks)."""
    if CredentialRateThrottle.THROTTLE_RATES.get(CredentialRateThrottle.scope) is None:
        return False
    view = (request.parser_context or {}).get("view")
    return view is not None and any(issubclass(t, CredentialRateThrottle) for t in view.throttle_classes)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    header = "X-API-Key"

    def authenticate(self, request):
        raw_key = request.headers.get(self.header)
        if raw_key is None:
            return None
        raw_key = raw_key.strip()
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != "evp":
            auth_failed(request, None, exceptions.AuthenticationFailed("Malformed API key."))
        credential = f"key:{parts[1]}"
        presented = ApiKey.hash_key(raw_key)
        entry = API_KEYS.redis_key(parts[1])
        if entry is None or not _counts_credentials(request):  # nothing cached (no shared cache), or no limit
            api_key = api_key_for_prefix(prefix=parts[1])
        else:  # the cached key and the rate limit's count: one round trip
            raw = count_and_read(request, ident=_throttle_ident(presented), read=entry)
            api_key = api_key_for_prefix(prefix=parts[1], raw=raw)
        if api_key is None or not hmac.compare_digest(api_key.key_hash, presented):
            auth_failed(request, credential, exceptions.AuthenticationFailed("Invalid API key."))
        if not api_key.is_usable(timezone.now()):
            auth_failed(request, credential, exceptions.AuthenticationFailed("API key revoked or expired."))
        bind_context(operator_id=api_key.operator_id)
        return ApiKeyPrincipal(api_key=api_key, operator=api_key.operator, scopes=frozenset(api_key.scopes)), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api", X-API-Key'


class OperatorJWTAuthentication(JWTAuthentication):
    """simplejwt, with its errors folded into our 401 `authentication_failed`. A token stops working when its
    user's password changes (the `hash_password` claim, CHECK_REVOKE_TOKEN) or the user is deactivated."""

    def authenticate(self, request):
        try:
            result = super().authenticate(request)
        except (InvalidToken, TokenError):
            auth_failed(request, None, exceptions.AuthenticationFailed("Invalid or expired token."))
        except exceptions.AuthenticationFailed as exc:
            auth_failed(request, None, exc)
        if result is not None:
            user, _ = result
            if user.operator_id is None:
                auth_failed(request, None, exceptions.AuthenticationFailed("This user belongs to no operator."))
            bind_context(operator_id=user.operator_id)
        return result

    def get_user(self, validated_token):
        # The operator is needed by every view: fetch it with the user in one query.
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        user = (
            User.objects.select_related("operator").filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
            if user_id is not None
            else None
        )
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("User not found or inactive.")
        if jwt_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise exceptions.AuthenticationFailed("The password has changed since this token was issued.")
        return user
