from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from evpay.core.models import ApiKey
from evpay.core.services import api_key_create, api_key_revoke, operator_user_create
from tests.base import assert_problem

URL = "/v1/payment-intents"


@pytest.mark.django_db
class TestApiKeys:
    def test_key_format_and_storage(self, operator):
        key, raw = api_key_create(operator=operator, scopes=["payments:read"])
        assert raw.startswith(f"evp_{key.prefix}_")
        assert raw not in key.key_hash and len(key.key_hash) == 64
        assert not ApiKey.objects.filter(key_hash__contains=raw.split("_", 2)[2]).exists()

    def test_valid_key_works_and_records_last_use(self, client, operator):
        assert client.get(URL).status_code == 200
        assert ApiKey.objects.get(operator=operator).last_used_at is not None

    def test_revocation_acts_on_the_next_request(self, client, operator):
        assert client.get(URL).status_code == 200
        api_key_revoke(api_key=ApiKey.objects.get(operator=operator))
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_expired_key(self, operator):
        _, raw = api_key_create(operator=operator, scopes=["*"], expires_at=timezone.now() - timedelta(seconds=1))
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        assert_problem(client.get(URL), 401, "authentication_failed")

    @pytest.mark.parametrize("raw", ["garbage", "evp_x", "evp_deadbeef_wrongsecret"])
    def test_bad_keys(self, raw):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_tampered_secret_with_real_prefix(self, client):
        client.credentials(HTTP_X_API_KEY=client.raw_key[:-2] + "zz")
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_write_implies_read(self, make_client, operator):
        assert make_client(operator, "payments:write").get(URL).status_code == 200
        body = {"amount": 1, "currency": "EUR"}
        assert make_client(operator, "payments:write").post(URL, body, format="json").status_code == 201
        assert_problem(make_client(operator, "payments:read").post(URL, body, format="json"), 403, "insufficient_scope")


@pytest.mark.django_db
class TestJwt:
    def _token(self, username, password):
        return APIClient().post("/v1/auth/token", {"username": username, "password": password}, format="json")

    def test_admin_token_has_every_scope(self, admin_user):
        response = self._token("alice", "s3cret-pass!")
        assert response.status_code == 200
        tokens = response.json()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert client.post(URL, {"amount": 1, "currency": "EUR"}, format="json").status_code == 201
        refreshed = APIClient().post("/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert refreshed.status_code == 200 and refreshed.json()["access"]

    def test_viewer_can_read_not_write(self, operator):
        operator_user_create(operator=operator, username="vic", password="viewer-pass!", role="viewer")
        access = self._token("vic", "viewer-pass!").json()["access"]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        assert client.get(URL).status_code == 200
        assert_problem(client.post(URL, {"amount": 1, "currency": "EUR"}, format="json"), 403, "insufficient_scope")

    def test_wrong_password_is_401(self, admin_user):
        assert_problem(self._token("alice", "nope"), 401, "authentication_failed")

    def test_bad_token_is_401(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
        assert_problem(client.get(URL), 401, "authentication_failed")

    def test_bad_refresh_is_401(self):
        response = APIClient().post("/v1/auth/token/refresh", {"refresh": "nope"}, format="json")
        assert_problem(response, 401, "authentication_failed")


@pytest.mark.django_db
class TestCommands:
    def test_create_operator_key_and_user(self, capsys):
        call_command("create_operator", "Acme Charging")
        op_id = capsys.readouterr().out.strip().splitlines()[-1]
        assert op_id.startswith("op_")
        call_command("create_api_key", "--operator", op_id, "--scopes", "payments:write,charges:read", "--name", "ci")
        raw = capsys.readouterr().out.strip().splitlines()[-1]
        assert raw.startswith("evp_")
        key = ApiKey.objects.get(prefix=raw.split("_")[1])
        assert sorted(key.scopes) == ["charges:read", "payments:write"] and key.name == "ci"
        call_command("create_api_key", "--operator", "Acme Charging", "--scopes", "*")
        assert capsys.readouterr().out.strip().startswith("evp_")
        call_command(
            "create_operator_user",
            "--operator",
            "Acme Charging",
            "--username",
            "bob",
            "--password",
            "pw-123456",
            "--role",
            "viewer",
        )
        client = APIClient()
        token = client.post("/v1/auth/token", {"username": "bob", "password": "pw-123456"}, format="json")
        assert token.status_code == 200

    def test_unknown_scope_and_operator_fail(self):
        from django.core.management.base import CommandError

        call_command("create_operator", "Acme")
        with pytest.raises(CommandError):
            call_command("create_api_key", "--operator", "Acme", "--scopes", "payments:delete")
        with pytest.raises(CommandError):
            call_command("create_api_key", "--operator", "op_missing", "--scopes", "*")
        with pytest.raises(CommandError):
            call_command("create_operator", "Acme")

    def test_seed_demo_prints_a_working_key(self, capsys):
        call_command("seed_demo")
        raw = capsys.readouterr().out.strip().splitlines()[-1]
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        assert client.get(URL).status_code == 200
        call_command("seed_demo")  # idempotent: a second run reuses the operator
        assert capsys.readouterr().out.strip().startswith("evp_")


def test_user_without_operator_cannot_use_the_api(db):
    from evpay.core.models import User

    User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    response = APIClient().post("/v1/auth/token", {"username": "root", "password": "root-pass-1"}, format="json")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert_problem(client.get(URL), 401, "authentication_failed")
