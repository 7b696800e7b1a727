"""Base classes every API view uses: tenancy, scopes, idempotency, problem details."""

from django.db import connection, transaction
from django.http import Http404
from rest_framework import mixins, viewsets
from rest_framework.views import APIView

from evpay.api.idempotency import idempotency_begin, idempotency_finish
from evpay.core.queries import PreparedQuery


class EvpayAPIMixin:
    """Claims the Idempotency-Key after authentication and stores the response it ends with.

    `single_commit_actions`: actions that call nothing outside the database (no processor, no CPMS, no DNS)
    run as one transaction, Idempotency-Key and stored response included: one commit, one WAL flush per
    request. A 5xx rolls it all back. Every other action keeps its own short transactions around its calls."""

    scope_resource: str | None = None
    action_scopes: dict = {}
    single_commit_actions: frozenset[str] = frozenset()
    _idempotency_record = None
    _single_commit = False

    def dispatch(self, request, *args, **kwargs):
        action = (getattr(self, "action_map", None) or {}).get(request.method.lower())
        self._single_commit = action in self.single_commit_actions and connection.vendor == "postgresql"
        if not self._single_commit:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            if response.status_code >= 500:
                transaction.set_rollback(True)
            return response

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            # Parsed here, once: a body of another type (415) or malformed JSON (400) is refused on every write,
            # also by actions that read no body.
            _ = request.data
        self._idempotency_record = idempotency_begin(request, deferred=self._single_commit)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency_record is not None:
            idempotency_finish(self._idempotency_record, response)
            self._idempotency_record = None
        return response

    @property
    def operator(self):
        return self.request.user.operator

    def validated_input(self, serializer_class, **kwargs) -> dict:
        """Validate the request body with an input serializer; a failure is a 400 `validation_error`."""
        request = self.request  # type: ignore[attr-defined]  # a mixin of DRF views
        serializer = serializer_class(data=request.data, context={"request": request, "view": self}, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class EvpayAPIView(EvpayAPIMixin, APIView):
    pass


class OperatorScopedViewSet(EvpayAPIMixin, viewsets.GenericViewSet):
    """Every queryset is cut to the caller's operator: another operator's id is a plain 404."""

    # NUL is never part of an id (and PostgreSQL rejects it in a query): such a path is a plain 404.
    lookup_value_regex = r"[^/\x00]+"
    #: For viewsets whose detail actions are hot paths: the object by operator and id, compiled once
    #: (`evpay.core.queries.PreparedQuery` with placeholders "operator" and "pk"). The same rows as get_queryset.
    object_query: PreparedQuery | None = None

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return queryset.none()
        return queryset.filter(operator=self.request.user.operator)

    def get_object(self):
        if self.object_query is None or getattr(self, "swagger_fake_view", False):
            return super().get_object()
        obj = self.object_query.first(operator=self.request.user.operator.pk, pk=self.kwargs[self.lookup_field])
        if obj is None:
            raise Http404  # what DRF's get_object raises
        self.check_object_permissions(self.request, obj)
        return obj

    def filter_queryset(self, queryset):
        # Query filters narrow lists. A detail action (get one, authorize it, ...) is addressed by its id alone:
        # building and validating the list's filter set there only cost time (a form per request).
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)

    def page_context(self, objects: list) -> dict:
        """What a list's serializer needs to know about a whole page (e.g. what an upper app keeps about these
        rows), looked up once per page instead of once per row. Nothing by default."""
        return {}

    def get_serializer(self, *args, **kwargs):
        if kwargs.get("many") and args:
            objects = list(args[0])
            kwargs["context"] = {**self.get_serializer_context(), **self.page_context(objects)}
            args = (objects, *args[1:])
        return super().get_serializer(*args, **kwargs)


class ReadOnlyOperatorViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorScopedViewSet):
    pass
