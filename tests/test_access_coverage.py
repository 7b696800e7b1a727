"""Every URL of the API is checked by some access test (`tests.base.EndpointAccessTests`): credentials, scope,
tenancy. A new endpoint that no access test names fails here until one does, or until it is listed below as
deliberately outside an operator's credentials."""

import importlib
import pkgutil
from collections import defaultdict
from urllib.parse import urlsplit

from django.urls import URLResolver, get_resolver, resolve

import tests
from tests.base import EndpointAccessTests

# Routes served without an operator's API credentials, each with why.
UNSCOPED_ROUTES = {
    "^health/?$": "liveness without I/O, for load balancers",
    "^health/live/?$": "liveness probe",
    "^health/ready/?$": "readiness probe",
    "^health/detailed/?$": "authenticated, without a scope: tests/test_health.py",
    "^metrics/?$": "Prometheus scrape endpoint",
    "^api/schema/?$": "the public OpenAPI document",
    "^api/docs/?$": "Swagger UI over the public schema",
    "^api/redoc/?$": "ReDoc over the public schema",
    "v1/auth/token/?$": "where credentials are obtained: tests/test_auth.py",
    "v1/auth/token/refresh/?$": "where credentials are renewed: tests/test_auth.py",
}
# Whole sites with their own authentication and tests.
UNSCOPED_PREFIXES = {
    "admin/": "the Django admin, behind its own login: tests/test_admin_*.py",
    "ocpi/": "OCPI 2.2.1, authenticated by a registered CPO's token, not an operator's: tests/test_ocpi_emsp.py",
}


def _routes(patterns, prefix=""):
    for pattern in patterns:
        route = URLResolver._join_route(prefix, str(pattern.pattern)) if prefix else str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route


def _access_test_classes():
    for module in pkgutil.iter_modules(tests.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"tests.{module.name}")
    found, todo = [], list(EndpointAccessTests.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in found if cls.endpoints]


def _covered_routes():
    covered = defaultdict(list)
    for cls in _access_test_classes():
        for method, template, _ in cls.endpoints:
            path = urlsplit(template.format_map(defaultdict(lambda: "x_1"))).path
            covered[resolve(path).route].append(f"{cls.__name__}: {method} {template}")
    return covered


def test_every_api_url_is_covered_by_an_access_test():
    covered = _covered_routes()
    missing = [
        route
        for route in _routes(get_resolver().url_patterns)
        if route not in covered
        and route not in UNSCOPED_ROUTES
        and not any(route.startswith(prefix) for prefix in UNSCOPED_PREFIXES)
    ]
    assert not missing, f"URLs no access test names (add them to an EndpointAccessTests subclass): {missing}"


def test_the_exemptions_name_real_routes():
    routes = set(_routes(get_resolver().url_patterns))
    assert not set(UNSCOPED_ROUTES) - routes, set(UNSCOPED_ROUTES) - routes
    assert _covered_routes(), "no access test found"
