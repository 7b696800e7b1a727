"""The security matrix over every endpoint of the URL conf (as drf-spectacular enumerates it, so a new endpoint
is in the matrix without anyone adding it): credentials (none, revoked, expired, tampered or alg=none JWT ->
401), every missing scope (403), another operator's ids in paths and in filters (exactly like an id that does
not exist), read-only fields ignored, 413, 415, malformed JSON, and brute force (429)."""

import base64
import json
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from evpay.api.permissions import has_scope
from evpay.core.models import ApiKey
from evpay.core.services import api_key_create, operator_create, operator_user_create
from payments import services as payment_services
from tests.base import assert_problem
from tests.charging_support import authorized_intent, make_station, make_tariff, make_terminal, start_session
from webhooks.models import Event, WebhookSubscription
from webhooks.signing import secret_generate

PUBLIC = {"/health", "/health/live", "/health/ready", "/api/schema", "/api/docs", "/api/redoc"}
CREDENTIAL_ENDPOINTS = {"/v1/auth/token", "/v1/auth/token/refresh"}
RESOURCES = ("payments", "charges", "terminals", "webhooks", "infrastructure")
ALL_SCOPES = [f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write")]
# Which object of the world a `{pk}` in a path names, by the path's beginning.
OBJECT_OF_PATH = {
    "/api/v1/webhooks/": "subscription",
    "/v1/adhoc-charges/": "session",
    "/v1/charging-infrastructure/mappings/": "mapping",
    "/v1/events/": "event",
    "/v1/payment-intents/": "intent",
    "/v1/refunds/": "refund",
    "/v1/tariffs/": "tariff",
    "/v1/terminals/": "terminal",
}
# Filters that take an id, and the object of the world they name.
ID_FILTERS = {
    "terminal_id": "terminal",
    "payment_intent_id": "intent",
    "object_id": "intent",
    "mapping_id": "mapping",
    "station_id": "station",
}


def _endpoints():
    found, lists = [], []
    for path, _, method, callback in EndpointEnumerator().get_api_endpoints():
        path = path.rstrip("/") or "/"
        view = callback.cls
        action = getattr(callback, "actions", {}).get(method.lower())
        found.append((method, path, view, action))
        # An @action may set its own filterset_class (None: no filters).
        lists.append((method, path, callback.initkwargs.get("filterset_class", getattr(view, "filterset_class", None))))
    return found, lists


ENDPOINTS, LISTS = _endpoints()
AUTHENTICATED = [e for e in ENDPOINTS if e[1] not in PUBLIC | CREDENTIAL_ENDPOINTS]
WRITES = [e for e in ENDPOINTS if e[0] in ("POST", "PUT", "PATCH") and e[1] not in PUBLIC]


def _required_scope(view, method, action) -> str | None:
    resource = getattr(view, "scope_resource", None)
    if resource is None:
        return None
    pinned = getattr(view, "action_scopes", {}).get(action)
    return pinned or f"{resource}:{'read' if method == 'GET' else 'write'}"


class World:
    """One operator's objects of every kind that a path or a filter can name."""

    def __init__(self, name):
        self.operator = operator_create(name=name)
        self.tariff = make_tariff(self.operator)
        self.mapping = make_station(self.operator, station_id=f"DE*{name[:3].upper()}*S1")
        self.station = self.mapping.station_id
        self.terminal = make_terminal(self.operator, serial=f"SN-{name}")
        self.subscription = WebhookSubscription.objects.create(
            operator=self.operator, url="http://127.0.0.1:9/hook", event_types=["*"], secret=secret_generate()
        )
        with transaction.atomic():
            self.intent = payment_services.payment_intent_capture(intent=authorized_intent(self.operator))
            self.refund = payment_services.refund_create(intent=self.intent, amount=100)
        self.session = start_session(self.operator, station_id=self.station, terminal=self.terminal)
        self.event = Event.objects.filter(operator=self.operator).first()

    def ids(self) -> dict[str, str]:
        names = ["tariff", "mapping", "terminal", "subscription", "intent", "refund", "session", "event"]
        return {name: getattr(self, name).pk for name in names} | {"station": self.station}


@pytest.fixture
def worlds(db, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return World("Alpha"), World("Bravo")


def _path(path: str, world_ids: dict[str, str]) -> str:
    if "{adapter_type}" in path:
        path = path.replace("{adapter_type}", "simulator")
    if "{pk}" in path:
        kind = next(kind for prefix, kind in OBJECT_OF_PATH.items() if path.startswith(prefix))
        path = path.replace("{pk}", world_ids[kind])
    return path


def _body(method, path) -> dict | None:
    if method == "GET" or method == "DELETE":
        return None
    if path.endswith("/progress"):
        return {"energy_wh": 1, "measured_at": timezone.now().isoformat()}
    if path.startswith("/api/v1/webhooks") and method == "PUT":
        return {"url": "http://127.0.0.1:9/other", "event_types": ["*"]}
    return {}


def _call(client, method, path, body=None, **extra):
    if body is None:
        return client.generic(method, path, **extra)
    return client.generic(method, path, json.dumps(body), content_type="application/json", **extra)


def _key_client(operator, scopes):
    _, raw = api_key_create(operator=operator, scopes=scopes)
    return APIClient(HTTP_X_API_KEY=raw), raw


def test_the_matrix_covers_every_endpoint():
    assert len(AUTHENTICATED) >= 45
    assert {"/v1/refunds", "/v1/events/{pk}/redeliver", "/health/detailed"} <= {p for _, p, _, _ in ENDPOINTS}
    for _, path, _, _ in AUTHENTICATED:
        if "{pk}" in path:
            assert any(path.startswith(prefix) for prefix in OBJECT_OF_PATH), f"no object for {path}"


@pytest.mark.django_db
def test_bad_credentials_are_401_everywhere(worlds):
    alpha, _ = worlds
    revoked_client, revoked = _key_client(alpha.operator, ["*"])
    expired_client, expired = _key_client(alpha.operator, ["*"])
    ApiKey.objects.filter(prefix=revoked.split("_")[1]).update(revoked_at=timezone.now())
    ApiKey.objects.filter(prefix=expired.split("_")[1]).update(expires_at=timezone.now() - timedelta(seconds=1))
    user = operator_user_create(operator=alpha.operator, username="matrix", password="matrix-pass-1", role="admin")
    token = str(AccessToken.for_user(user))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(claims["user_id"]) + "0"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    bearers = {
        "tampered": f"{header}.{forged_payload}.{signature}",
        "alg=none": f"{none_header}.{payload}.",
        "expired": str(_expired_token(user)),
    }
    clients = {
        "anonymous": (APIClient(), "not_authenticated"),
        "revoked key": (revoked_client, "authentication_failed"),
        "expired key": (expired_client, "authentication_failed"),
        **{
            f"{kind} JWT": (APIClient(HTTP_AUTHORIZATION=f"Bearer {bearer}"), "authentication_failed")
            for kind, bearer in bearers.items()
        },
    }
    ids = alpha.ids()
    for method, path, _, _ in AUTHENTICATED:
        for name, (client, code) in clients.items():
            response = _call(client, method, _path(path, ids), _body(method, path))
            assert response.status_code == 401, (name, method, path, response.content[:300])
            assert_problem(response, 401, code)


def _expired_token(user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return token


@pytest.mark.django_db
def test_every_missing_scope_is_403(worlds):
    alpha, _ = worlds
    ids = alpha.ids()
    checked = 0
    for method, path, view, action in AUTHENTICATED:
        required = _required_scope(view, method, action)
        if required is None:
            continue
        resource = required.split(":")[0]
        lacking = [[s for s in ALL_SCOPES if not s.startswith(resource + ":")]]
        if required.endswith(":write"):
            lacking.append([f"{resource}:read"])
        for scopes in lacking:
            assert not has_scope(frozenset(scopes), required)
            client, _ = _key_client(alpha.operator, scopes)
            response = _call(client, method, _path(path, ids), _body(method, path))
            assert response.status_code == 403, (scopes, method, path, response.content[:300])
            assert_problem(response, 403, "insufficient_scope")
            checked += 1
    assert checked >= 60


@pytest.mark.django_db
def test_another_operators_ids_answer_as_ids_that_do_not_exist(worlds):
    alpha, bravo = worlds
    client, _ = _key_client(alpha.operator, ["*"])
    nowhere = {kind: re.sub(r"_.*", "_doesnotexist000000000000", pk) for kind, pk in bravo.ids().items()}
    checked = 0
    for method, path, _, _ in AUTHENTICATED:
        if "{pk}" not in path:
            continue
        body = _body(method, path)
        theirs = _call(client, method, _path(path, bravo.ids()), body)
        missing = _call(client, method, _path(path, nowhere), body)
        assert theirs.status_code == missing.status_code == 404, (method, path, theirs.content[:300])
        assert theirs.json()["code"] == missing.json()["code"] == "not_found"
        checked += 1
    assert checked >= 20


@pytest.mark.django_db
def test_another_operators_ids_in_filters_find_nothing(worlds):
    alpha, bravo = worlds
    client, _ = _key_client(alpha.operator, ["*"])
    schema_filters = {}
    for method, path, filterset_class in LISTS:
        if method == "GET" and "{pk}" not in path and filterset_class is not None:
            schema_filters[path] = [name for name in filterset_class.base_filters if name in ID_FILTERS]
    assert sum(len(v) for v in schema_filters.values()) >= 6
    for path, names in schema_filters.items():
        for name in names:
            theirs = client.get(path, {name: bravo.ids()[ID_FILTERS[name]]})
            assert theirs.status_code == 200, (path, name, theirs.content[:300])
            assert theirs.json()["results"] == [], (path, name)
            mine = client.get(path, {name: alpha.ids()[ID_FILTERS[name]]})
            assert mine.status_code == 200


@pytest.mark.django_db
def test_bodies_too_large_of_the_wrong_type_or_malformed(worlds):
    alpha, _ = worlds
    client, _ = _key_client(alpha.operator, ["*"])
    ids = alpha.ids()
    for method, path, _, _ in WRITES:
        target = _path(path, ids)
        big = json.dumps({"description": "x" * (65 * 1024)})
        assert_problem(client.generic(method, target, big, content_type="application/json"), 413, "request_too_large")
        wrong_type = client.generic(method, target, "amount=1", content_type="text/plain")
        assert wrong_type.status_code == 415, (method, path, wrong_type.content[:300])
        assert_problem(wrong_type, 415, "unsupported_media_type")
        malformed = client.generic(method, target, '{"amount": 1,', content_type="application/json")
        assert malformed.status_code == 400, (method, path, malformed.content[:300])
        assert_problem(malformed, 400, "validation_error")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/payment-intents", {"amount": 100, "currency": "EUR"}),
        ("/v1/terminals", {"serial_number": "SN-RO"}),
        ("/api/v1/webhooks", {"url": "http://127.0.0.1:9/ro", "event_types": ["*"]}),
        ("/v1/tariffs", {"name": "RO", "currency": "EUR", "preauthorize_amount": 1000}),
    ],
)
def test_read_only_fields_in_a_body_are_ignored(worlds, path, body):
    alpha, bravo = worlds
    client, _ = _key_client(alpha.operator, ["*"])
    hostile = {
        **body,
        "id": "xx_chosen_by_the_client",
        "operator": bravo.operator.pk,
        "operator_id": bravo.operator.pk,
        "status": "captured",
        "amount_captured": 100,
        "created_at": "2001-01-01T00:00:00Z",
        "secret": "whsec_chosen",
    }
    response = client.post(path, hostile, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"] != hostile["id"] and not created["created_at"].startswith("2001")
    assert created.get("status") != "captured" and created.get("amount_captured", 0) == 0
    assert created.get("secret") != "whsec_chosen"
    assert client.get(f"{path}/{created['id']}").status_code == 200
    stranger, _ = _key_client(bravo.operator, ["*"])
    assert stranger.get(f"{path}/{created['id']}").status_code == 404


@pytest.mark.django_db
def test_brute_force_is_429_on_every_endpoint(worlds, settings, auth_failure_window_held):
    from django.core.cache import cache

    settings.AUTH_FAILURES_PER_CREDENTIAL = 3
    alpha, _ = worlds
    ids = alpha.ids()
    prefix = api_key_create(operator=alpha.operator, scopes=["*"])[1].split("_")[1]
    guesser = APIClient(HTTP_X_API_KEY=f"evp_{prefix}_guess")
    for method, path, _, _ in AUTHENTICATED:
        cache.clear()
        statuses = [_call(guesser, method, _path(path, ids), _body(method, path)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429], (method, path, statuses)
        refused = _call(guesser, method, _path(path, ids), _body(method, path))
        assert_problem(refused, 429, "rate_limited")
        assert int(refused["Retry-After"]) > 0
