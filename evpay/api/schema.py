"""OpenAPI: both auth schemes, the Idempotency-Key header and the problem-details errors on every operation."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from evpay.api.errors import PROBLEM_CONTENT_TYPE
from evpay.api.serializers import Serializer


class ProblemSerializer(Serializer):
    """RFC 9457 problem details. `code` is stable; `errors` maps fields to messages on validation errors."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # the problem document's field, not Serializer.errors
        child=serializers.JSONField(),
        required=False,
        help_text="Field -> list of messages; a nested field (an object or a list of objects) has the same "
        "shape nested: field -> subfield -> messages, or field -> list of such objects.",
    )


ERROR_DESCRIPTIONS = {
    "400": "`validation_error` (field errors in `errors`), or a specific code such as `amount_exceeds_capturable`.",
    "401": "`not_authenticated` or `authentication_failed`.",
    "403": "`insufficient_scope`.",
    "404": "`not_found`: no such object, or one of another operator.",
    "409": "`invalid_state` or a specific conflict code; `idempotency_key_in_use`.",
    "413": "`request_too_large`: body over 64 KiB.",
    "415": "`unsupported_media_type`: send `application/json`.",
    "422": "`idempotency_key_reused`: the key was used with another body or path.",
    "429": "`rate_limited`; see `Retry-After`.",
}


class EvpayAutoSchema(AutoSchema):
    def _error_codes(self) -> list[str]:
        authenticated = bool(self.view.get_authenticators()) if hasattr(self.view, "get_authenticators") else True
        codes = ["401", "403", "429"] if authenticated else []
        if getattr(self.view, "credentials_checked", False):  # the token endpoints: wrong credentials
            codes += ["401", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["400", "409", "413", "415"]
        elif self.method == "GET" and self._is_list_view():
            codes.append("400")
        if self.method == "POST":
            codes.append("422")
        return codes

    def _is_list_view(self, serializer=None) -> bool:
        # A `list` without pagination answers the one envelope it declares itself (`fixed_list`), not an array.
        if getattr(self.view, "action", None) == "list" and getattr(self.view, "pagination_class", ...) is None:
            return False
        return super()._is_list_view(serializer)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        problem = self.resolve_serializer(ProblemSerializer, direction).ref
        for code, response in responses.items():
            if code.isdigit() and int(code) >= 400 and response.get("content"):
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem}}
        for code in self._error_codes():
            responses.setdefault(
                code,
                {
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}},
                    "description": ERROR_DESCRIPTIONS[code],
                },
            )
        return responses

    def get_override_parameters(self):
        params = super().get_override_parameters()
        if self.method == "POST":
            params = [
                *params,
                OpenApiParameter(
                    "Idempotency-Key",
                    {"type": "string", "minLength": 1, "maxLength": 255},
                    OpenApiParameter.HEADER,
                    required=False,
                    description="1-255 characters. A repeat within 24 h with the same body replays the first "
                    "response (`Idempotent-Replayed: true`); another body -> 422; while the first is "
                    "running -> 409 `idempotency_key_in_use`.",
                ),
            ]
        return params


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "evpay.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "`evp_<prefix>_<secret>`; scopes such as `payments:write` or `*`.",
        }


class OperatorJWTScheme(SimpleJWTScheme):
    target_class = "evpay.api.authentication.OperatorJWTAuthentication"
    name = "BearerJWT"


def strip_trailing_slashes(result, generator, request, public):
    """Routes accept an optional trailing slash; the contract's paths have none."""
    result["paths"] = {path.rstrip("/") or "/": item for path, item in result["paths"].items()}
    return result
