import io
import logging
import re
import time
import uuid

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.handlers.wsgi import LimitedStream
from django.middleware.csrf import CsrfViewMiddleware

from evpay.api.errors import (
    DATABASE_UNAVAILABLE_ERRORS,
    database_unavailable_response,
    handler404,
    handler500,
    problem_response,
)
from evpay.logging import bind_context

access_logger = logging.getLogger("evpay.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The API authenticates every request by its own credentials (API key or JWT) and sets no cookies.
API_PREFIXES = ("/v1/", "/api/v1/")


class _BrowserOnly:
    """The wrapped Django middleware runs for the admin and other browser pages only: under API_PREFIXES it
    would load a session, look for a CSRF cookie and attach message storage that no API request uses."""

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)


class BrowserSessionMiddleware(_BrowserOnly, SessionMiddleware):
    pass


class BrowserCsrfViewMiddleware(_BrowserOnly, CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        if request.path_info.startswith(API_PREFIXES):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    pass


class RequestMetricsMiddleware:
    """The request series the dashboards and alerts read, under django-prometheus's names, labels and buckets:
    requests by view, responses by status and view, latency by view (from here, the outermost middleware, so
    including the middleware). django-prometheus's own pair of middlewares wrote sixteen values per request to the
    multiprocess files, most of them for series nothing reads (body sizes, charsets, methods alone); these are
    four."""

    METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"))

    def __init__(self, get_response):
        from django_prometheus.middleware import Metrics

        self.get_response = get_response
        metrics = Metrics.get_instance()
        self.requests = metrics.requests_by_view_transport_method
        self.responses = metrics.responses_by_status_view_method
        self.latency = metrics.requests_latency_by_view_method
        self._series: dict[tuple, tuple] = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        method = request.method if request.method in self.METHODS else "<invalid method>"
        key = (view, method, request.is_secure(), response.status_code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._labelled(*key)
        requests, responses, latency = series
        requests.inc()
        responses.inc()
        latency.observe(time.perf_counter() - started)
        return response

    def _labelled(self, view: str, method: str, secure: bool, status: int) -> tuple:
        """The request's three series; looked up once per view, method, scheme and status (a handful per view:
        the cache stays small) instead of three lookups under the registry's lock per request."""
        return (
            self.requests.labels(view, "https" if secure else "http", method),
            self.responses.labels(str(status), view, method),
            self.latency.labels(view, method),
        )


class RequestIdMiddleware:
    """Echo a sane incoming X-Request-ID or make one; every log line of the request carries it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else f"req_{uuid.uuid4().hex}"
        request.request_id = request_id
        # Set (not reset afterwards): Django's own request logging runs after the middleware returns.
        bind_context(request_id=request_id, operator_id=None)
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies over API_MAX_BODY_BYTES with 413 before anything reads them.

    A body sent with `Transfer-Encoding: chunked` has no Content-Length, and Django reads a request without
    one as empty: such a body is read here (the server has already removed the chunking), up to the limit,
    and handed on with its length."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.API_MAX_BODY_BYTES
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
            "CONTENT_LENGTH"
        ):
            body = request.META["wsgi.input"].read(limit + 1) if "wsgi.input" in request.META else b""
            if len(body) > limit:
                return self._too_large(f"Request body is over {limit} bytes")
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            request.META["CONTENT_LENGTH"] = str(len(body))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit and not request.path.startswith("/admin/"):
            return self._too_large(f"Request body is {length} bytes")
        return self.get_response(request)

    @staticmethod
    def _too_large(what: str):
        return problem_response(
            status=413,
            code="request_too_large",
            detail=f"{what}; the limit is {settings.API_MAX_BODY_BYTES}.",
        )


class ApiProblemMiddleware:
    """Under /v1 and /api, a 404 or 500 that Django rendered as HTML (no route, or DEBUG pages) becomes a
    problem document, so API clients always get application/problem+json."""

    API_PREFIXES = API_PREFIXES

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code in (404, 500)
            and request.path.startswith(self.API_PREFIXES)
            and not response.get("Content-Type", "").startswith(("application/json", "application/problem+json"))
        ):
            return handler404(request) if response.status_code == 404 else handler500(request)
        return response

    def process_exception(self, request, exception):
        # Outside DRF's exception handler (admin, a middleware after this one): the database being away is a
        # 503 the client can retry, not a 500.
        if isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            return database_unavailable_response(exception)
        return None
