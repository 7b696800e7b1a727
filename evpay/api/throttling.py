from rest_framework.throttling import SimpleRateThrottle


class CredentialRateThrottle(SimpleRateThrottle):
    """One bucket per API key or user; unauthenticated requests by client address."""

    scope = "credential"

    def get_cache_key(self, request, view):
        user = request.user
        ident = user.credential_id if getattr(user, "is_authenticated", False) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
