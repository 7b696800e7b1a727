"""Refunds through the API with the simulator processor: amounts, bad input, events, idempotency, tenancy,
processor failures, the retry job, the charge session's amount_refunded, the admin action; and parallel refunds
on real connections."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from evpay.core.services import operator_user_create
from payments import services
from payments.models import PaymentIntent, Refund
from payments.processors import ProcessorUnavailable, SimulatorProcessor
from payments.tasks import retry_pending_refunds
from tests.base import EndpointAccessTests, assert_problem
from tests.charging_support import START_URL, authorized_intent, make_station, make_tariff, make_terminal, start_body
from webhooks.models import Event

URL = "/v1/refunds"
INTENTS = "/v1/payment-intents"


def captured_intent(operator, amount=5000, captured=None):
    intent = authorized_intent(operator, amount=amount)
    return services.payment_intent_capture(intent=intent, amount_to_capture=captured)


def refund(client, intent_id, **body):
    return client.post(URL, {"payment_intent_id": intent_id, **body}, format="json")


def event_types(object_id):
    qs = Event.objects.filter(data__object__id=object_id).order_by("created_at")
    return list(qs.values_list("type", flat=True))


class TestRefundAccess(EndpointAccessTests):
    scope_resource = "payments"
    endpoints = [
        ("POST", URL, {"payment_intent_id": "pi_x"}),
        ("GET", URL, None),
        ("GET", URL + "/{id}", None),
    ]

    def make_object(self, operator):
        intent = PaymentIntent.objects.create(
            operator=operator, amount=100, currency="EUR", status="captured", amount_captured=100
        )
        return Refund.objects.create(operator=operator, payment_intent=intent, amount=10, currency="EUR")


@pytest.mark.django_db
class TestCreate:
    def test_full_refund_by_default(self, client, operator):
        intent = captured_intent(operator, captured=4000)
        response = refund(client, intent.pk, reason="overcharge", metadata={"ticket": "T-1"})
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["id"].startswith("re_") and body["object"] == "refund"
        assert (body["payment_intent_id"], body["amount"], body["currency"]) == (intent.pk, 4000, "EUR")
        assert (body["status"], body["reason"], body["failure_reason"]) == ("succeeded", "overcharge", None)
        assert body["processor_reference"].startswith("sim_re_") and body["metadata"] == {"ticket": "T-1"}
        assert client.get(f"{URL}/{body['id']}").json() == body
        paid = client.get(f"{INTENTS}/{intent.pk}").json()
        assert (paid["status"], paid["amount_captured"], paid["amount_refunded"]) == ("captured", 4000, 4000)
        assert event_types(body["id"]) == ["refund.created", "refund.succeeded"]
        refunded = Event.objects.get(type="payment_intent.refunded", data__object__id=intent.pk)
        assert refunded.data["object"]["amount_refunded"] == 4000

    def test_partial_refunds_up_to_the_captured_amount(self, client, operator):
        intent = captured_intent(operator, captured=1000)
        assert refund(client, intent.pk, amount=300).json()["amount"] == 300
        assert refund(client, intent.pk, amount=600).json()["amount"] == 600
        body = assert_problem(refund(client, intent.pk, amount=101), 400, "amount_exceeds_refundable")
        assert body["errors"] == {"amount": ["At most 100."]}
        assert refund(client, intent.pk).json()["amount"] == 100  # the rest
        assert_problem(refund(client, intent.pk), 400, "amount_exceeds_refundable")  # nothing left
        assert client.get(f"{INTENTS}/{intent.pk}").json()["amount_refunded"] == 1000
        assert Event.objects.filter(type="payment_intent.refunded", data__object__id=intent.pk).count() == 3
        assert PaymentIntent.objects.get(pk=intent.pk).amount_refund_pending == 0

    @pytest.mark.parametrize("make", ["requires_authorization", "authorized", "voided"])
    def test_intent_not_captured_is_409(self, client, operator, make):
        intent = authorized_intent(operator)
        if make == "requires_authorization":
            intent = services.payment_intent_create(operator=operator, amount=100, currency="EUR")
        elif make == "voided":
            intent = services.payment_intent_void(intent=intent)
        assert_problem(refund(client, intent.pk, amount=10), 409, "invalid_state")
        assert not Refund.objects.exists() and not Event.objects.filter(type__startswith="refund.").exists()

    def test_unknown_or_other_operators_intent_is_404(self, client, other_operator):
        foreign = captured_intent(other_operator)
        for intent_id in (foreign.pk, "pi_doesnotexist"):
            assert_problem(refund(client, intent_id), 404, "not_found")
        assert not Refund.objects.exists()
        assert PaymentIntent.objects.get(pk=foreign.pk).amount_refunded == 0

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"amount": 0}, "amount"),
            ({"amount": -5}, "amount"),
            ({"amount": 10.5}, "amount"),
            ({"amount": "100"}, "amount"),
            ({"reason": "because"}, "reason"),
            ({"metadata": {"k": {"nested": 1}}}, "metadata"),
        ],
    )
    def test_bad_input_is_400_and_changes_nothing(self, client, operator, body, field):
        intent = captured_intent(operator)
        problem = assert_problem(refund(client, intent.pk, **body), 400, "validation_error")
        assert field in problem["errors"]
        assert not Refund.objects.exists()

    def test_missing_intent_id_is_400(self, client):
        assert "payment_intent_id" in assert_problem(client.post(URL, {}, format="json"), 400)["errors"]

    def test_idempotent_replay(self, client, operator):
        intent = captured_intent(operator)
        headers = {"HTTP_IDEMPOTENCY_KEY": "refund-1"}
        first = client.post(URL, {"payment_intent_id": intent.pk, "amount": 100}, format="json", **headers)
        again = client.post(URL, {"payment_intent_id": intent.pk, "amount": 100}, format="json", **headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        other = client.post(URL, {"payment_intent_id": intent.pk, "amount": 200}, format="json", **headers)
        assert_problem(other, 422, "idempotency_key_reused")
        assert Refund.objects.count() == 1 and PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 100


@pytest.mark.django_db
class TestProcessorOutcomes:
    def test_refused_refund_fails_and_changes_nothing_on_the_intent(self, client, operator):
        intent = captured_intent(operator, amount=1000)
        before = client.get(f"{INTENTS}/{intent.pk}").json()
        with override_settings(PAYMENT_SIMULATOR_FAIL=["refund"]):
            response = refund(client, intent.pk, amount=400)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "failed" and "refused" in body["failure_reason"]
        assert body["processor_reference"] is None
        assert client.get(f"{INTENTS}/{intent.pk}").json() == before
        assert event_types(body["id"]) == ["refund.created", "refund.failed"]
        assert not Event.objects.filter(type="payment_intent.refunded").exists()
        # The reservation was released: the whole amount is refundable again.
        assert refund(client, intent.pk).json()["amount"] == 1000

    def test_unavailable_processor_leaves_it_pending_until_the_retry_job(self, client, operator, monkeypatch):
        intent = captured_intent(operator, amount=1000)
        calls = []

        def unavailable(self, **kwargs):
            calls.append(kwargs["idempotency_key"])
            raise ProcessorUnavailable("connection refused")

        with monkeypatch.context() as patched:
            patched.setattr(SimulatorProcessor, "refund", unavailable)
            body = refund(client, intent.pk, amount=700).json()
            assert body["status"] == "pending"
            # Reserved: only 300 are left to refund meanwhile.
            assert_problem(refund(client, intent.pk, amount=301), 400, "amount_exceeds_refundable")
            assert client.get(f"{INTENTS}/{intent.pk}").json()["amount_refunded"] == 0
            # Not due yet; then due and the processor still down: stays pending.
            assert retry_pending_refunds() == 0 and len(calls) == 1
            Refund.objects.filter(pk=body["id"]).update(attempted_at=timezone.now() - timedelta(minutes=5))
            assert retry_pending_refunds() == 0 and len(calls) == 2
        assert calls == [f"{body['id']}:refund"] * 2  # the same key every time: never refunded twice
        Refund.objects.filter(pk=body["id"]).update(attempted_at=timezone.now() - timedelta(minutes=5))
        assert retry_pending_refunds() == 1
        done = client.get(f"{URL}/{body['id']}").json()
        assert done["status"] == "succeeded" and Refund.objects.get(pk=body["id"]).attempts == 3
        assert client.get(f"{INTENTS}/{intent.pk}").json()["amount_refunded"] == 700
        assert event_types(body["id"]) == ["refund.created", "refund.succeeded"]
        assert retry_pending_refunds() == 0


@pytest.mark.django_db
class TestList:
    def test_filters_and_pagination(self, client, operator, other_operator):
        first, second = captured_intent(operator), captured_intent(operator)
        captured_intent(other_operator)
        ids = [refund(client, first.pk, amount=100).json()["id"] for _ in range(3)]
        with override_settings(PAYMENT_SIMULATOR_FAIL=["refund"]):
            failed = refund(client, second.pk, amount=100).json()["id"]
        Refund.objects.create(
            operator=other_operator, payment_intent=PaymentIntent.objects.get(operator=other_operator), amount=1
        )

        listed = client.get(URL).json()
        assert [r["id"] for r in listed["results"]] == [failed, *reversed(ids)]  # newest first, own only
        by_intent = client.get(URL, {"payment_intent_id": first.pk}).json()["results"]
        assert [r["id"] for r in by_intent] == list(reversed(ids))
        assert [r["id"] for r in client.get(URL, {"status": "failed"}).json()["results"]] == [failed]
        created = Refund.objects.get(pk=ids[1]).created_at
        after = client.get(URL, {"created_after": created.isoformat()}).json()["results"]
        assert ids[0] not in [r["id"] for r in after] and ids[1] in [r["id"] for r in after]
        before = client.get(URL, {"created_before": created.isoformat()}).json()["results"]
        assert [r["id"] for r in before] == [ids[0]]

        page = client.get(URL, {"limit": 2}).json()
        assert len(page["results"]) == 2 and page["next"]
        rest = client.get(page["next"]).json()
        assert [r["id"] for r in page["results"] + rest["results"]] == [r["id"] for r in listed["results"]]

    @pytest.mark.parametrize("params", [{"status": "done"}, {"created_after": "yesterday"}, {"limit": "x"}])
    def test_invalid_filter_is_400(self, client, params):
        assert_problem(client.get(URL, params), 400)

    def test_unknown_or_other_operators_refund_is_404(self, client, other_operator):
        intent = captured_intent(other_operator)
        foreign = services.refund_create(intent=intent, amount=1)
        assert_problem(client.get(f"{URL}/{foreign.pk}"), 404, "not_found")
        assert_problem(client.get(f"{URL}/re_doesnotexist"), 404, "not_found")


@pytest.mark.django_db
def test_charge_session_shows_its_intents_succeeded_refunds(client, operator):
    make_tariff(operator, price_per_kwh="0.50")
    make_station(operator)
    terminal = make_terminal(operator)
    intent = authorized_intent(operator)
    session_id = client.post(START_URL, start_body(terminal, intent), format="json").json()["id"]
    client.put(
        f"/v1/adhoc-charges/{session_id}/progress",
        {"energy_wh": 10000, "measured_at": timezone.now().isoformat()},
        format="json",
    )
    done = client.post(f"/v1/adhoc-charges/{session_id}/complete", {}, format="json").json()
    assert (done["amount_captured"], done["amount_refunded"]) == (500, 0)
    assert refund(client, intent.pk, amount=120).status_code == 201
    with override_settings(PAYMENT_SIMULATOR_FAIL=["refund"]):
        assert refund(client, intent.pk, amount=50).json()["status"] == "failed"  # not counted
    session = client.get(f"/v1/adhoc-charges/{session_id}").json()
    assert (session["amount_captured"], session["amount_refunded"]) == (500, 120)
    listed = client.get("/v1/adhoc-charges").json()["results"]
    assert [s["amount_refunded"] for s in listed] == [120]


@pytest.mark.django_db
def test_admin_refund_action_calls_the_service(operator):
    intent = captured_intent(operator, captured=800)
    not_captured = authorized_intent(operator)
    staff = Client()
    staff.force_login(operator_user_create(operator=operator, username="ops", password="pw-123456", role="admin"))
    response = staff.post(
        "/admin/payments/paymentintent/",
        {"action": "refund_selected", "_selected_action": [intent.pk, not_captured.pk]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Refunds created: 1." in text and "only a captured intent can be refunded" in text
    made = Refund.objects.get()
    assert (made.payment_intent_id, made.amount, made.status, made.reason) == (
        intent.pk,
        800,
        "succeeded",
        "requested_by_customer",
    )
    assert Event.objects.filter(type="refund.succeeded", data__object__id=made.pk).exists()
    page = staff.get(f"/admin/payments/refund/{quote(made.pk)}/change/").content.decode()
    assert made.pk in page and 'name="_save"' not in page
    intent_page = staff.get(f"/admin/payments/paymentintent/{quote(intent.pk)}/change/").content.decode()
    assert made.pk in intent_page and 'name="_save"' not in intent_page  # its refunds, view-only


def _post_refund(raw_key, intent_id, amount):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    response = client.post(URL, {"payment_intent_id": intent_id, "amount": amount}, format="json")
    return response.status_code, response.json().get("code") or response.json()["status"]


@pytest.mark.django_db(transaction=True)
def test_parallel_partial_refunds_never_sum_past_the_captured_amount(client, operator, parallel):
    intent = captured_intent(operator, amount=5000)
    n = 12
    results = parallel(lambda i: _post_refund(client.raw_key, intent.pk, 700), n)
    succeeded = [r for r in results if r == (201, "succeeded")]
    assert len(succeeded) == 7, results  # 7 * 700 = 4900 <= 5000 < 8 * 700
    assert all(r == (400, "amount_exceeds_refundable") for r in results if r not in succeeded), results
    final = PaymentIntent.objects.get(pk=intent.pk)
    assert (final.amount_refunded, final.amount_refund_pending) == (4900, 0)
    assert Refund.objects.filter(payment_intent=intent, status="succeeded").count() == 7
    assert Event.objects.filter(type="refund.succeeded").count() == 7
    assert Event.objects.filter(type="payment_intent.refunded", data__object__id=intent.pk).count() == 7


@pytest.mark.django_db(transaction=True)
def test_parallel_full_refunds_exactly_one_wins(client, operator, parallel):
    intent = captured_intent(operator, amount=3000)

    def full(i):
        c = APIClient()
        c.credentials(HTTP_X_API_KEY=client.raw_key)
        return c.post(URL, {"payment_intent_id": intent.pk}, format="json").status_code

    statuses = parallel(full, 10)
    assert sorted(statuses) == [201] + [400] * 9, statuses
    assert PaymentIntent.objects.get(pk=intent.pk).amount_refunded == 3000
    assert Refund.objects.filter(payment_intent=intent).count() == 1
