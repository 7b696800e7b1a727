"""A bad day for the API: the cache (Redis) away, the database away, hostile bodies, forged cursors, times out of
range, brute force, stale tokens, chunked bodies, and a health page that must not show other tenants."""

import base64
import io
import logging
import socket
from datetime import timedelta

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from evpay.core.services import operator_user_create
from tests.base import assert_problem
from tests.charging_support import START_URL, authorized_intent, make_station, make_tariff, make_terminal, start_body

INTENTS = "/v1/payment-intents"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tracebacks_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.levelno >= logging.CRITICAL]


# --- Redis (the cache) down: throttling fails open ------------------------------------------------------------


@pytest.mark.django_db
def test_writes_answer_201_when_the_cache_is_down(client, caplog):
    dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
                        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}  # fmt: skip

    def cache_errors():
        return REGISTRY.get_sample_value("evpay_throttle_cache_errors_total", {"limiter": "credential"}) or 0

    before = cache_errors()
    with override_settings(CACHES=dead), caplog.at_level(logging.WARNING, logger="evpay.api.throttling"):
        responses = [client.post(INTENTS, {"amount": 100 + i, "currency": "EUR"}, format="json") for i in range(5)]
        wrong = APIClient(HTTP_X_API_KEY="evp_nosuch_secret").get(INTENTS)  # failed-auth counting fails open too
    assert [r.status_code for r in responses] == [201] * 5, responses[0].content
    assert_problem(wrong, 401, "authentication_failed")
    assert cache_errors() >= before + 5
    assert any("failing open" in r.getMessage() for r in caplog.records)
    assert not _tracebacks_logged(caplog)


# --- Hostile JSON ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/auth/token", INTENTS, "/api/v1/webhooks"])
def test_deeply_nested_json_is_400_without_a_traceback(client, path, caplog):
    body = b"[" * 1000 + b"]" * 1000
    with caplog.at_level(logging.INFO):
        response = client.generic("POST", path, body, content_type="application/json")
    assert_problem(response, 400, "validation_error")
    assert "nested deeper" in response.json()["detail"]
    assert not _tracebacks_logged(caplog)


@pytest.mark.django_db
def test_nesting_inside_strings_does_not_count(client):
    response = client.post(INTENTS, {"amount": 100, "currency": "EUR", "description": "[" * 500}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_an_oversized_body_without_content_length_is_413(client):
    body = b'{"amount": 100, "currency": "EUR", "description": "' + b"x" * 70_000 + b'"}'
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}
    response = client.generic("POST", INTENTS, body, content_type="application/json", **environ)
    assert_problem(response, 413, "request_too_large")


# --- Chunked bodies ----------------------------------------------------------------------------------------------


def _chunked_request(body: bytes) -> WSGIRequest:
    return WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": INTENTS,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": io.BytesIO(body),  # what the server hands on: the body with the chunking removed
        }
    )


def test_a_chunked_body_is_read():
    from evpay.middleware import BodySizeLimitMiddleware

    seen = {}

    def view(request):
        seen["body"] = request.body
        return None

    BodySizeLimitMiddleware(view)(_chunked_request(b'{"amount": 100}'))
    assert seen["body"] == b'{"amount": 100}'


def test_a_chunked_body_over_the_limit_is_413():
    from evpay.middleware import BodySizeLimitMiddleware

    response = BodySizeLimitMiddleware(lambda request: None)(_chunked_request(b"x" * (64 * 1024 + 1)))
    assert response.status_code == 413


# --- Forged cursors ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        base64.b64encode(b"p=notadate").decode(),
        base64.b64encode(b"p=" + b"9" * 3000).decode(),
        base64.b64encode(b"p=2026-13-45 99:00:00+00:00").decode(),
        "é",
    ],
)
@pytest.mark.parametrize("path", [INTENTS, "/v1/terminals", "/api/v1/webhooks", "/v1/adhoc-charges"])
def test_a_forged_cursor_is_400(client, path, cursor):
    client.post(INTENTS, {"amount": 100, "currency": "EUR"}, format="json")
    body = assert_problem(client.get(path, {"cursor": cursor}), 400, "validation_error")
    assert "cursor" in body["errors"]


@pytest.mark.django_db
def test_a_real_cursor_still_pages(client):
    for i in range(3):
        client.post(INTENTS, {"amount": 100 + i, "currency": "EUR"}, format="json")
    first = client.get(INTENTS, {"limit": 2}).json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1


# --- Times out of range ------------------------------------------------------------------------------------------

OUT_OF_RANGE = [
    "0042-09-21T08:06:28Z",
    "1999-12-31T23:59:59Z",
    "2000-01-01T00:59:59+01:00",  # 1999 in UTC
    (timezone.now() + timedelta(minutes=10)).isoformat(),
    "9999-12-31T23:59:59-23:59",  # no UTC equivalent
]


@pytest.mark.django_db
@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_a_health_event_time_out_of_range_is_400(client, operator, when):
    terminal = make_terminal(operator, status="offline")
    response = client.post(
        f"/v1/terminals/{terminal.pk}/health-events", {"type": "heartbeat", "occurred_at": when}, format="json"
    )
    assert "occurred_at" in assert_problem(response, 400, "validation_error")["errors"]
    terminal.refresh_from_db()
    assert terminal.status == "offline" and terminal.last_seen_at is None


@pytest.fixture
def session_id(client, operator):
    make_tariff(operator)
    make_station(operator)
    response = client.post(START_URL, start_body(make_terminal(operator), authorized_intent(operator)), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.mark.django_db
@pytest.mark.parametrize("when", OUT_OF_RANGE[:2])
def test_session_times_out_of_range_are_400(client, session_id, when):
    progress = client.put(f"/v1/adhoc-charges/{session_id}/progress", {"energy_wh": 1, "measured_at": when})
    assert "measured_at" in assert_problem(progress, 400, "validation_error")["errors"]
    complete = client.post(f"/v1/adhoc-charges/{session_id}/complete", {"ended_at": when}, format="json")
    assert "ended_at" in assert_problem(complete, 400, "validation_error")["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_a_filter_time_out_of_range_is_400(client, name, when):
    assert name in assert_problem(client.get(INTENTS, {name: when}), 400, "validation_error")["errors"]


@pytest.mark.django_db
def test_a_time_in_range_is_accepted(client, operator):
    terminal = make_terminal(operator, status="offline")
    when = (timezone.now() + timedelta(minutes=1)).isoformat()
    response = client.post(
        f"/v1/terminals/{terminal.pk}/health-events", {"type": "heartbeat", "occurred_at": when}, format="json"
    )
    assert response.status_code == 201, response.content


# --- The database away -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_away_is_503_with_retry_after(client, monkeypatch, caplog):
    from payments import views

    def unavailable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views.PaymentIntentViewSet, "get_queryset", unavailable)
    with caplog.at_level(logging.INFO):
        response = client.get(INTENTS)
    body = assert_problem(response, 503, "service_unavailable")
    assert body["type"] == "https://evpay.dev/errors/service_unavailable"
    assert int(response["Retry-After"]) > 0
    assert not _tracebacks_logged(caplog)


# --- Brute force -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestBruteForce:
    @pytest.fixture(autouse=True)
    def _limits(self, settings, auth_failure_window_held):
        settings.AUTH_FAILURES_PER_CREDENTIAL, settings.AUTH_FAILURES_PER_ADDRESS = 5, 12

    def _token(self, username, password, address="10.0.0.1"):
        return APIClient(REMOTE_ADDR=address).post(
            "/v1/auth/token", {"username": username, "password": password}, format="json"
        )

    def test_wrong_passwords_are_throttled_per_username(self, admin_user):
        statuses = [self._token("alice", f"guess-{i}").status_code for i in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        refused = self._token("alice", "s3cret-pass!")  # even the right one, while the window lasts
        assert_problem(refused, 429, "rate_limited")
        assert 0 < int(refused["Retry-After"]) <= 300
        assert self._token("alice", "s3cret-pass!", address="10.0.0.2").status_code == 429  # per username

    def test_wrong_passwords_are_throttled_per_address(self, operator):
        operator_user_create(operator=operator, username="bob", password="bob-pass-123", role="admin")
        statuses = [self._token(f"user{i}", "nope").status_code for i in range(14)]
        assert statuses == [401] * 12 + [429] * 2
        assert self._token("bob", "bob-pass-123", address="10.0.0.9").status_code == 200  # another address

    def test_wrong_api_keys_are_throttled_and_the_right_one_is_untouched(self, client):
        prefix = client.raw_key.split("_")[1]
        stranger = APIClient(HTTP_X_API_KEY=f"evp_{prefix}_wrong-secret")
        statuses = [stranger.get(INTENTS).status_code for _ in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        assert "Retry-After" in stranger.get(INTENTS)
        assert client.get(INTENTS).status_code == 200  # the key's owner (same address) is served

    def test_forged_tokens_are_throttled_per_address(self, admin_user):
        token = str(AccessToken.for_user(admin_user))
        header, payload, _ = token.split(".")
        none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        forged = [f"{header}.{payload}.AAAA", f"{none_alg}.{payload}.", "not-a-jwt"]
        statuses = [APIClient(HTTP_AUTHORIZATION=f"Bearer {forged[i % 3]}").get(INTENTS).status_code for i in range(14)]
        assert statuses == [401] * 12 + [429] * 2
        valid = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert valid.get(INTENTS).status_code == 200


# --- Tokens end with the password or the account ---------------------------------------------------------------


@pytest.mark.django_db
class TestTokenInvalidation:
    def _tokens(self):
        response = APIClient().post("/v1/auth/token", {"username": "alice", "password": "s3cret-pass!"})
        assert response.status_code == 200, response.content
        return response.json()

    def test_a_password_change_ends_every_token(self, admin_user):
        tokens = self._tokens()
        client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert client.get(INTENTS).status_code == 200
        admin_user.set_password("another-pass-2")
        admin_user.save()
        assert_problem(client.get(INTENTS), 401, "authentication_failed")
        assert_problem(APIClient().post("/v1/auth/token/refresh", {"refresh": tokens["refresh"]}), 401)

    def test_deactivation_ends_every_token(self, admin_user):
        tokens = self._tokens()
        admin_user.is_active = False
        admin_user.save()
        client = APIClient(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert_problem(client.get(INTENTS), 401, "authentication_failed")
        assert_problem(APIClient().post("/v1/auth/token/refresh", {"refresh": tokens["refresh"]}), 401)

    def test_a_refresh_of_a_deleted_user_is_401(self, admin_user):
        tokens = self._tokens()
        admin_user.delete()
        assert_problem(APIClient().post("/v1/auth/token/refresh", {"refresh": tokens["refresh"]}), 401)


# --- /health/detailed shows the caller's operator only ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the checks run in threads with connections of their own
def test_detailed_health_is_scoped_to_the_callers_operator(client, other_client, operator, other_operator):
    from infrastructure.models import AdapterConfig
    from terminals.models import Terminal

    for i in range(3):
        Terminal.objects.create(operator=other_operator, serial_number=f"B-{i}", status="online")
    Terminal.objects.create(operator=operator, serial_number="A-1", status="offline")
    AdapterConfig.objects.update_or_create(
        operator=other_operator, adapter_type="simulator", defaults={"enabled": True, "circuit_state": "open"}
    )
    mine = client.get("/health/detailed").json()["components"]
    theirs = other_client.get("/health/detailed").json()["components"]
    assert mine["terminals"]["total"] == 1 and mine["terminals"]["online"] == 0
    assert theirs["terminals"]["total"] == 3
    assert mine["cpms_adapters"]["open_circuits"] == 0 and mine["cpms_adapters"]["status"] == "ok"
    assert theirs["cpms_adapters"]["open_circuits"] == 1


# --- Schema conformance fixes (the contract fuzzing suite checks the rest) ----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["created_after=", "created_before=", "is_active="])
def test_an_empty_filter_value_is_400(client, query):
    body = assert_problem(client.get(f"/api/v1/webhooks?{query}"), 400, "validation_error")
    assert query.rstrip("=") in body["errors"]


@pytest.mark.django_db
def test_a_bad_refresh_token_has_a_readable_detail():
    body = assert_problem(APIClient().post("/v1/auth/token/refresh", {"refresh": "nope"}), 401)
    assert body["detail"] == "Token is invalid"


def test_the_schema_documents_what_the_api_answers():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path in ("/v1/auth/token", "/v1/auth/token/refresh"):
        assert {"401", "429"} <= set(paths[path]["post"]["responses"])
    for path in ("/v1/charging-infrastructure/config", "/v1/charging-infrastructure/adapters/health"):
        body = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in body  # the list envelope, not an array of envelopes
    put = paths["/api/v1/webhooks/{id}"]["put"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][put["$ref"].rsplit("/", 1)[1]]
    assert "secret" in component["properties"] and "secret" not in component["required"]
    limit = next(p for p in paths["/v1/payment-intents"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
    key = next(p for p in paths["/v1/payment-intents"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    is_active = next(p for p in paths["/api/v1/webhooks"]["get"]["parameters"] if p["name"] == "is_active")
    assert is_active["schema"] == {"type": "boolean"}
    errors = schema["components"]["schemas"]["Problem"]["properties"]["errors"]
    assert errors["additionalProperties"] == {}  # nested fields nest their messages
