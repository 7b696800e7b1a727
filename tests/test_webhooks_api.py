import base64

import pytest
from django.db import transaction
from django.test import override_settings

from tests.base import EndpointAccessTests, assert_problem
from webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription
from webhooks.services import event_emit
from webhooks.signing import secret_generate

URL = "/api/v1/webhooks"
PUBLIC_URL = "https://93.184.216.34/hooks"  # a public address literal: no DNS needed


def create(client, **body):
    body = {"url": PUBLIC_URL, "event_types": ["payment_intent.captured"], **body}
    return client.post(URL, body, format="json")


def emit(operator, type_="payment_intent.captured"):
    with transaction.atomic():
        return event_emit(operator=operator, type=type_, data_object={"id": "pi_test", "object": "payment_intent"})


class TestWebhookAccess(EndpointAccessTests):
    scope_resource = "webhooks"
    endpoints = [
        ("POST", URL, {"url": PUBLIC_URL, "event_types": ["*"]}),
        ("GET", URL, None),
        ("GET", URL + "/{id}", None),
        ("PUT", URL + "/{id}", {"url": PUBLIC_URL, "event_types": ["*"]}),
        ("DELETE", URL + "/{id}", None),
        ("GET", URL + "/{id}/deliveries", None),
        ("POST", URL + "/{id}/test", {}),
    ]

    def make_object(self, operator):
        return WebhookSubscription.objects.create(
            operator=operator, url=PUBLIC_URL, event_types=["*"], secret=secret_generate()
        )


@pytest.mark.django_db
class TestCreate:
    def test_creates_and_shows_the_secret_once(self, client):
        response = create(client, description="ERP", event_types=["payment_intent.captured", "charge.completed"])
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["id"].startswith("whs_")
        assert body["url"] == PUBLIC_URL and body["description"] == "ERP"
        assert body["event_types"] == ["payment_intent.captured", "charge.completed"]
        assert body["is_active"] is True and body["disabled_reason"] is None
        assert body["secret"].startswith("whsec_")
        assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
        assert body["secret_hint"] == body["secret"][:8]
        assert body["created_at"].endswith("Z")
        shown = client.get(f"{URL}/{body['id']}").json()
        assert "secret" not in shown and shown["secret_hint"] == body["secret_hint"]
        assert all("secret" not in s for s in client.get(URL).json()["results"])

    def test_each_subscription_gets_its_own_secret(self, client):
        assert create(client).json()["secret"] != create(client).json()["secret"]

    def test_star_means_every_type(self, client):
        assert create(client, event_types=["charge.failed", "*"]).json()["event_types"] == ["*"]

    def test_every_listed_type_is_accepted(self, client):
        assert create(client, event_types=list(EVENT_TYPES)).status_code == 201

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"event_types": ["payment_intent.exploded"]}, "event_types"),
            ({"event_types": []}, "event_types"),
            ({"event_types": "payment_intent.captured"}, "event_types"),
            ({"url": "not a url"}, "url"),
            ({"url": None}, "url"),
            ({"description": "x" * 501}, "description"),
        ],
    )
    def test_bad_input_is_400_and_creates_nothing(self, client, body, field):
        body_ = assert_problem(create(client, **body), 400, "validation_error")
        assert field in body_["errors"]
        assert not WebhookSubscription.objects.exists()

    def test_missing_fields_are_400(self, client):
        body = assert_problem(client.post(URL, {}, format="json"), 400, "validation_error")
        assert {"url", "event_types"} <= set(body["errors"])

    def test_operator_is_never_taken_from_the_body(self, client, operator, other_operator):
        response = create(client, operator=other_operator.pk)
        assert WebhookSubscription.objects.get(pk=response.json()["id"]).operator == operator


@pytest.mark.django_db
class TestSsrfGuard:
    @pytest.fixture(autouse=True)
    def production_guard(self, settings):
        settings.WEBHOOK_ALLOWED_NETWORKS = []
        settings.WEBHOOK_ALLOW_HTTP = False

    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://172.16.0.1/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://[::1]/hook",
            "https://[fc00::1]/hook",
            "https://0.0.0.0/hook",
            "https://224.0.0.1/hook",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/hook",
            "https://localhost:8443/hook",
        ],
    )
    def test_internal_addresses_are_refused_at_create(self, client, url):
        assert_problem(create(client, url=url), 400, "url_not_allowed")
        assert not WebhookSubscription.objects.exists()

    @pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://localhost/hook", "https://10.0.0.1/hook"])
    def test_internal_addresses_are_refused_at_update(self, client, url):
        subscription = create(client).json()
        response = client.put(f"{URL}/{subscription['id']}", {"url": url, "event_types": ["*"]}, format="json")
        assert_problem(response, 400, "url_not_allowed")
        assert WebhookSubscription.objects.get(pk=subscription["id"]).url == PUBLIC_URL

    def test_http_is_refused_unless_allowed(self, client):
        assert_problem(create(client, url="http://93.184.216.34/hook"), 400, "url_not_allowed")
        with override_settings(WEBHOOK_ALLOW_HTTP=True):
            assert create(client, url="http://93.184.216.34/hook").status_code == 201

    def test_other_schemes_are_refused(self, client):
        response = create(client, url="ftp://93.184.216.34/hook")
        assert response.status_code == 400

    def test_unresolvable_host_is_refused(self, client):
        assert_problem(create(client, url="https://does-not-exist.invalid/hook"), 400, "url_not_allowed")

    def test_allowed_networks_lift_the_guard(self, client):
        with override_settings(WEBHOOK_ALLOWED_NETWORKS=["10.0.0.0/8", "::1/128"]):
            assert create(client, url="https://10.0.0.1/hook").status_code == 201
            assert create(client, url="https://[::1]/hook").status_code == 201
            assert_problem(create(client, url="https://192.168.1.1/hook"), 400, "url_not_allowed")

    def test_public_address_is_accepted(self, client):
        assert create(client).status_code == 201


@pytest.mark.django_db
class TestRetrieveAndList:
    def test_unknown_id_is_404(self, client):
        assert_problem(client.get(f"{URL}/whs_nope"), 404, "not_found")

    def test_list_is_newest_first_and_paginated(self, client):
        ids = [create(client).json()["id"] for _ in range(3)]
        page = client.get(URL, {"limit": 2}).json()
        assert [s["id"] for s in page["results"]] == ids[::-1][:2]
        rest = client.get(page["next"]).json()
        assert [s["id"] for s in rest["results"]] == ids[:1]

    def test_list_shows_only_own_operator(self, client, other_client):
        create(other_client)
        mine = create(client).json()
        assert [s["id"] for s in client.get(URL).json()["results"]] == [mine["id"]]

    def test_filters(self, client):
        captured = create(client, event_types=["payment_intent.captured"]).json()
        every = create(client, event_types=["*"]).json()
        charge = create(client, event_types=["charge.completed"]).json()
        client.delete(f"{URL}/{charge['id']}")

        def ids(**params):
            return {s["id"] for s in client.get(URL, params).json()["results"]}

        assert ids(event_type="payment_intent.captured") == {captured["id"], every["id"]}
        assert ids(event_type="charge.completed") == {charge["id"], every["id"]}
        assert ids(is_active="false") == {charge["id"]}
        assert ids(is_active="true") == {captured["id"], every["id"]}

    @pytest.mark.parametrize(
        "params", [{"event_type": "nope"}, {"is_active": "maybe"}, {"limit": "x"}, {"created_after": "yesterday"}]
    )
    def test_invalid_filter_is_400(self, client, params):
        assert_problem(client.get(URL, params), 400, "validation_error")


@pytest.mark.django_db
class TestUpdate:
    def put(self, client, subscription_id, **body):
        body = {"url": PUBLIC_URL, "event_types": ["*"], **body}
        return client.put(f"{URL}/{subscription_id}", body, format="json")

    def test_replaces_url_types_and_description(self, client):
        subscription = create(client, description="old").json()
        response = self.put(
            client,
            subscription["id"],
            url="https://93.184.216.35/new",
            event_types=["terminal.registered"],
            description="new",
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["url"], body["event_types"], body["description"]) == (
            "https://93.184.216.35/new",
            ["terminal.registered"],
            "new",
        )
        assert "secret" not in body and body["secret_hint"] == subscription["secret_hint"]

    def test_description_is_kept_when_omitted(self, client):
        subscription = create(client, description="keep").json()
        assert self.put(client, subscription["id"]).json()["description"] == "keep"

    def test_rotate_secret_returns_the_new_secret_and_keeps_the_old_for_a_day(self, client):
        subscription = create(client).json()
        body = self.put(client, subscription["id"], rotate_secret=True).json()
        assert body["secret"].startswith("whsec_") and body["secret"] != subscription["secret"]
        assert body["secret_hint"] == body["secret"][:8]
        stored = WebhookSubscription.objects.get(pk=subscription["id"])
        assert stored.previous_secret == subscription["secret"]
        assert stored.signing_secrets(stored.updated_at) == [body["secret"], subscription["secret"]]

    def test_deactivate_and_reenable(self, client):
        subscription = create(client).json()
        body = self.put(client, subscription["id"], is_active=False).json()
        assert (body["is_active"], body["disabled_reason"]) == (False, "deactivated")
        body = self.put(client, subscription["id"], is_active=True).json()
        assert (body["is_active"], body["disabled_reason"]) == (True, None)

    def test_url_and_event_types_are_required(self, client):
        subscription = create(client).json()
        response = client.put(f"{URL}/{subscription['id']}", {"description": "x"}, format="json")
        assert {"url", "event_types"} <= set(assert_problem(response, 400, "validation_error")["errors"])

    def test_unknown_event_type_is_400(self, client):
        subscription = create(client).json()
        assert_problem(self.put(client, subscription["id"], event_types=["nope"]), 400, "validation_error")

    def test_patch_is_not_offered(self, client):
        subscription = create(client).json()
        assert_problem(client.patch(f"{URL}/{subscription['id']}", {}, format="json"), 405)

    def test_unknown_id_is_404(self, client):
        assert_problem(self.put(client, "whs_nope"), 404, "not_found")


@pytest.mark.django_db
class TestDelete:
    def test_deactivates_and_stays_readable(self, client, operator):
        subscription = create(client).json()
        emit(operator)
        response = client.delete(f"{URL}/{subscription['id']}")
        assert response.status_code == 204
        body = client.get(f"{URL}/{subscription['id']}").json()
        assert (body["is_active"], body["disabled_reason"]) == (False, "deactivated")
        assert len(client.get(f"{URL}/{subscription['id']}/deliveries").json()["results"]) == 1
        emit(operator)
        assert WebhookDelivery.objects.filter(subscription_id=subscription["id"]).count() == 1

    def test_delete_twice_is_harmless(self, client):
        subscription = create(client).json()
        assert client.delete(f"{URL}/{subscription['id']}").status_code == 204
        assert client.delete(f"{URL}/{subscription['id']}").status_code == 204

    def test_unknown_id_is_404(self, client):
        assert_problem(client.delete(f"{URL}/whs_nope"), 404, "not_found")


@pytest.mark.django_db
class TestFanOut:
    def test_one_delivery_per_matching_active_subscription(self, client, other_client, operator):
        captured = create(client, event_types=["payment_intent.captured"]).json()
        every = create(client, event_types=["*"]).json()
        create(client, event_types=["charge.completed"])
        inactive = create(client, event_types=["*"]).json()
        client.delete(f"{URL}/{inactive['id']}")
        create(other_client, event_types=["*"])
        event = emit(operator)
        deliveries = WebhookDelivery.objects.filter(event=event)
        assert {d.subscription_id for d in deliveries} == {captured["id"], every["id"]}
        assert all(d.status == "pending" and d.next_attempt_at and d.event_type == event.type for d in deliveries)

    def test_no_subscription_no_delivery(self, operator):
        emit(operator)
        assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
class TestDeliveriesList:
    def test_lists_deliveries_with_filters(self, client, operator):
        subscription = create(client, event_types=["*"]).json()
        captured = emit(operator, "payment_intent.captured")
        emit(operator, "charge.completed")
        WebhookDelivery.objects.filter(event_type="charge.completed").update(status="failed")
        path = f"{URL}/{subscription['id']}/deliveries"
        results = client.get(path).json()["results"]
        assert [d["event_type"] for d in results] == ["charge.completed", "payment_intent.captured"]
        delivery = results[1]
        assert delivery["id"].startswith("whd_") and delivery["subscription_id"] == subscription["id"]
        assert delivery["event_id"] == captured.id and delivery["status"] == "pending"
        assert delivery["attempt_count"] == 0 and delivery["attempts"] == []
        assert set(delivery) == {
            "id",
            "subscription_id",
            "event_id",
            "event_type",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_response_status",
            "last_error",
            "attempts",
            "created_at",
        }
        assert [d["event_type"] for d in client.get(path, {"status": "failed"}).json()["results"]] == [
            "charge.completed"
        ]
        assert [
            d["event_id"] for d in client.get(path, {"event_type": "payment_intent.captured"}).json()["results"]
        ] == [captured.id]
        assert len(client.get(path, {"limit": 1}).json()["results"]) == 1

    def test_attempts_are_listed_in_order(self, client, operator):
        subscription = create(client, event_types=["*"]).json()
        delivery = WebhookDelivery.objects.get(event=emit(operator))
        for number in (2, 3, 1):
            WebhookDeliveryAttempt.objects.create(delivery=delivery, number=number, response_status=500)
        (listed,) = client.get(f"{URL}/{subscription['id']}/deliveries").json()["results"]
        assert [a["number"] for a in listed["attempts"]] == [1, 2, 3]

    @pytest.mark.parametrize("params", [{"status": "lost"}, {"event_type": "nope"}, {"cursor": "garbage"}])
    def test_invalid_filter_is_400(self, client, params):
        subscription = create(client).json()
        assert_problem(client.get(f"{URL}/{subscription['id']}/deliveries", params), 400, "validation_error")

    def test_unknown_subscription_is_404(self, client):
        assert_problem(client.get(f"{URL}/whs_nope/deliveries"), 404, "not_found")


@pytest.mark.django_db
class TestTestEndpoint:
    def test_delivers_webhook_test_to_this_subscription_only(self, client, operator):
        subscription = create(client, event_types=["payment_intent.captured"]).json()
        every = create(client, event_types=["*"]).json()
        response = client.post(f"{URL}/{subscription['id']}/test", {}, format="json")
        assert response.status_code == 202
        body = response.json()
        assert body["event_type"] == "webhook.test" and body["status"] == "pending"
        assert body["subscription_id"] == subscription["id"]
        assert not WebhookDelivery.objects.filter(subscription_id=every["id"]).exists()
        assert WebhookDelivery.objects.get(pk=body["id"]).payload.body.count(subscription["id"]) >= 1

    def test_inactive_subscription_is_409(self, client):
        subscription = create(client).json()
        client.delete(f"{URL}/{subscription['id']}")
        assert_problem(client.post(f"{URL}/{subscription['id']}/test", {}, format="json"), 409, "invalid_state")
        assert not WebhookDelivery.objects.exists()

    def test_unknown_subscription_is_404(self, client):
        assert_problem(client.post(f"{URL}/whs_nope/test", {}, format="json"), 404, "not_found")
