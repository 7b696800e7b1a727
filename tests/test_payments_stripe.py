"""The `stripe` processor through our API, checked in the counterpart's own state: against localstripe (hold,
partial capture, void, refunds, a decline, the server stopped and started again, a whole charge session), and
against a scripted HTTP server for what localstripe lacks (idempotency keys, 5xx, 429, decline codes,
time-outs, refusals). Plus the start-up checks and the operator's own key in the admin."""

import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.contrib.admin.utils import quote
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from evpay.core.services import operator_user_create
from payments import services
from payments.apps import check_processor_settings
from payments.models import PaymentIntent, Refund, StripeAccount
from payments.tasks import retry_pending_refunds
from tests.base import assert_problem
from tests.charging_support import START_URL, make_station, make_tariff, make_terminal
from tests.stripe_support import ROOT, LocalStripe, ScriptedStripe, stripe_error, stripe_intent, stripe_list
from webhooks.models import Event

INTENTS = "/v1/payment-intents"
REFUNDS = "/v1/refunds"


def card(token):
    return {"payment_method": {"type": "card_present", "token": token}}


def new_intent(client, amount=5000):
    response = client.post(INTENTS, {"amount": amount, "currency": "EUR"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def authorize(client, intent_id, token="pm_card_visa"):
    return client.post(f"{INTENTS}/{intent_id}/authorize", card(token), format="json")


def authorized(client, amount=5000):
    intent = new_intent(client, amount)
    response = authorize(client, intent["id"])
    assert response.status_code == 200, response.content
    return response.json()


def stripe_settings(settings, url, *, timeout=3.0, retries=1):
    settings.PAYMENT_PROCESSOR = "stripe"
    settings.STRIPE_API_BASE = url
    settings.STRIPE_SECRET_KEY = "sk_test_evpay_platform"
    settings.STRIPE_TIMEOUT = timeout
    settings.STRIPE_MAX_NETWORK_RETRIES = retries


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    server = LocalStripe(tmp_path_factory.mktemp("localstripe")).start()
    yield server
    server.stop()


@pytest.fixture
def on_localstripe(settings, localstripe):
    stripe_settings(settings, localstripe.url + "/")  # a trailing slash, as an operator may well write it
    return localstripe


@pytest.fixture
def scripted(settings):
    server = ScriptedStripe()
    stripe_settings(settings, server.url, timeout=0.5, retries=1)
    yield server
    server.close()


# --- against localstripe --------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestOnLocalstripe:
    def test_authorize_places_a_manual_capture_hold(self, client, on_localstripe):
        intent = new_intent(client, 4200)
        assert intent["processor"] == "stripe"
        body = authorize(client, intent["id"]).json()
        assert (body["status"], body["amount_capturable"]) == ("authorized", 4200)
        assert body["payment_method"]["brand"] == "visa" and body["payment_method"]["last4"] == "4242"
        [theirs] = on_localstripe.intents_for(intent["id"])
        assert theirs.id == body["processor_reference"]
        assert (theirs.status, theirs.amount, theirs.currency, theirs.capture_method) == (
            "requires_capture",
            4200,
            "eur",
            "manual",
        )

    def test_partial_capture_takes_only_that_amount(self, client, on_localstripe):
        intent = authorized(client, 5000)
        body = client.post(f"{INTENTS}/{intent['id']}/capture", {"amount_to_capture": 3100}, format="json").json()
        assert (body["status"], body["amount_captured"]) == ("captured", 3100)
        reference = body["processor_reference"]
        assert on_localstripe.client().v1.payment_intents.retrieve(reference).status == "succeeded"
        assert on_localstripe.amount_received(reference) == 3100

    def test_void_cancels_the_stripe_intent(self, client, on_localstripe):
        intent = authorized(client)
        body = client.post(f"{INTENTS}/{intent['id']}/void", {}, format="json").json()
        assert (body["status"], body["amount_capturable"]) == ("voided", 0)
        assert on_localstripe.client().v1.payment_intents.retrieve(intent["processor_reference"]).status == "canceled"

    def test_refunds_are_stripe_refunds(self, client, on_localstripe):
        intent = authorized(client, 5000)
        client.post(f"{INTENTS}/{intent['id']}/capture", {"amount_to_capture": 4000}, format="json")
        first = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 1500}, format="json").json()
        second = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 1000}, format="json").json()
        assert first["status"] == second["status"] == "succeeded"
        too_much = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 1501}, format="json")
        assert_problem(too_much, 400, "amount_exceeds_refundable")

        theirs = {r.id: r for r in on_localstripe.refunds_of(intent["processor_reference"])}
        assert set(theirs) == {first["processor_reference"], second["processor_reference"]}
        assert theirs[first["processor_reference"]].amount == 1500
        assert theirs[first["processor_reference"]].metadata.to_dict()["evpay_refund_id"] == first["id"]
        assert theirs[second["processor_reference"]].amount == 1000
        assert client.get(f"{INTENTS}/{intent['id']}").json()["amount_refunded"] == 2500
        # Stripe still shows what was taken; the money given back is exactly our refunds.
        assert on_localstripe.amount_received(intent["processor_reference"]) == 4000
        assert sum(r.amount for r in theirs.values()) == 2500

    def test_declined_card_is_402_and_the_intent_stays(self, client, on_localstripe):
        # localstripe declines charges with pm_card_chargeCustomerFail (pm_card_visa_chargeDeclined only on
        # attaching to a customer, and it sends no decline_code: Stripe's own generic_decline is assumed).
        intent = new_intent(client)
        problem = assert_problem(authorize(client, intent["id"], "pm_card_chargeCustomerFail"), 402, "card_declined")
        assert problem["decline_code"] == "generic_decline"
        body = client.get(f"{INTENTS}/{intent['id']}").json()
        assert body["status"] == "requires_authorization" and body["processor_reference"] is None
        assert body["last_payment_error"]["decline_code"] == "generic_decline"
        [theirs] = on_localstripe.intents_for(intent["id"])
        assert theirs.status == "requires_payment_method"
        # Another card is a new attempt at Stripe (a new idempotency key), and it holds.
        assert authorize(client, intent["id"], "pm_card_visa").json()["status"] == "authorized"
        statuses = sorted(pi.status for pi in on_localstripe.intents_for(intent["id"]))
        assert statuses == ["requires_capture", "requires_payment_method"]

    def test_unknown_payment_method_is_400(self, client, on_localstripe):
        intent = new_intent(client)
        assert_problem(authorize(client, intent["id"], "pm_doesnotexist"), 400, "invalid_payment_method")
        assert client.get(f"{INTENTS}/{intent['id']}").json()["status"] == "requires_authorization"


@pytest.mark.django_db
def test_localstripe_stopped_is_503_with_nothing_changed_and_the_retry_succeeds(client, settings, tmp_path):
    server = LocalStripe(tmp_path).start()
    stripe_settings(settings, server.url, timeout=2, retries=1)
    try:
        to_capture = authorized(client, 3000)
        to_refund = authorized(client, 2000)
        client.post(f"{INTENTS}/{to_refund['id']}/capture", {}, format="json")
        to_authorize = new_intent(client, 1000)
        server.stop()

        assert_problem(authorize(client, to_authorize["id"]), 503, "processor_unavailable")
        assert_problem(client.post(f"{INTENTS}/{to_capture['id']}/capture", {}, format="json"), 503)
        pending = client.post(REFUNDS, {"payment_intent_id": to_refund["id"], "amount": 500}, format="json")
        assert pending.status_code == 201 and pending.json()["status"] == "pending"
        assert client.get(f"{INTENTS}/{to_authorize['id']}").json()["status"] == "requires_authorization"
        still = client.get(f"{INTENTS}/{to_capture['id']}").json()
        assert (still["status"], still["amount_captured"], still["amount_capturable"]) == ("authorized", 0, 3000)
        assert client.get(f"{INTENTS}/{to_refund['id']}").json()["amount_refunded"] == 0

        server.start()
        # Nothing reached Stripe while it was down.
        assert server.intents_for(to_authorize["id"]) == []
        assert server.client().v1.payment_intents.retrieve(to_capture["processor_reference"]).status == (
            "requires_capture"
        )
        assert server.refunds_of(to_refund["processor_reference"]) == []

        assert authorize(client, to_authorize["id"]).json()["status"] == "authorized"
        assert [pi.status for pi in server.intents_for(to_authorize["id"])] == ["requires_capture"]
        assert client.post(f"{INTENTS}/{to_capture['id']}/capture", {}, format="json").json()["status"] == "captured"
        assert server.amount_received(to_capture["processor_reference"]) == 3000
        Refund.objects.filter(pk=pending.json()["id"]).update(attempted_at=timezone.now() - timedelta(hours=1))
        assert retry_pending_refunds() == 1
        done = client.get(f"{REFUNDS}/{pending.json()['id']}").json()
        assert done["status"] == "succeeded"
        [theirs] = server.refunds_of(to_refund["processor_reference"])
        assert (theirs.id, theirs.amount) == (done["processor_reference"], 500)
        assert client.get(f"{INTENTS}/{to_refund['id']}").json()["amount_refunded"] == 500
    finally:
        server.stop()


@pytest.mark.django_db
def test_charge_session_end_to_end_on_stripe(client, operator, on_localstripe):
    make_tariff(operator, price_per_kwh="0.40", session_fee="0.50", vat_rate_percent="19")
    make_station(operator)
    terminal = make_terminal(operator)
    intent = authorized(client, 5000)
    start = {
        "terminal_id": terminal.pk,
        "station_id": "DE*EVP*S1",
        "connector_id": "1",
        "payment_intent_id": intent["id"],
    }
    session = client.post(START_URL, start, format="json").json()
    reading = {"energy_wh": 20000, "measured_at": timezone.now().isoformat()}
    assert client.put(f"/v1/adhoc-charges/{session['id']}/progress", reading, format="json").json()["status"] == (
        "charging"
    )
    done = client.post(f"/v1/adhoc-charges/{session['id']}/complete", {}, format="json").json()
    # 20 kWh * 0.40 = 8.00 + 0.50 fee = 850; VAT 19 % = 161.5 -> 162; total 1012.
    assert (done["status"], done["cost"]["total"], done["amount_captured"]) == ("completed", 1012, 1012)
    assert on_localstripe.amount_received(intent["processor_reference"]) == 1012

    refund = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 212}, format="json").json()
    assert refund["status"] == "succeeded"
    assert client.get(f"/v1/adhoc-charges/{session['id']}").json()["amount_refunded"] == 212
    [theirs] = on_localstripe.refunds_of(intent["processor_reference"])
    assert (theirs.id, theirs.amount) == (refund["processor_reference"], 212)


# --- against a scripted Stripe (what localstripe does not do) -----------------------------------------------------


def _keys(scripted):
    return [(r["method"], r["path"].split("?")[0], r["headers"].get("Idempotency-Key")) for r in scripted.requests]


@pytest.mark.django_db
class TestScriptedStripe:
    def test_every_request_carries_a_key_of_our_object_and_action(self, client, scripted):
        scripted.answer(200, stripe_intent("pi_S1"))
        scripted.answer(200, stripe_intent("pi_S1", status="succeeded"))
        scripted.answer(200, stripe_list())
        scripted.answer(200, {"id": "re_S1", "object": "refund", "status": "succeeded", "amount": 1000})
        scripted.answer(200, stripe_intent("pi_S2"))
        scripted.answer(200, stripe_intent("pi_S2", status="canceled"))
        first = authorized(client)
        assert first["payment_method"] == {"type": "card_present", "brand": "mastercard", "last4": "4444",
                                           "fingerprint": "Xt5EWLLDS7FJjR1c"}  # fmt: skip
        client.post(f"{INTENTS}/{first['id']}/capture", {"amount_to_capture": 3000}, format="json")
        refund = client.post(REFUNDS, {"payment_intent_id": first["id"], "amount": 1000}, format="json").json()
        second = authorized(client)
        client.post(f"{INTENTS}/{second['id']}/void", {}, format="json")

        assert _keys(scripted) == [
            ("POST", "/v1/payment_intents", f"{first['id']}:authorize:0"),
            ("POST", "/v1/payment_intents/pi_S1/capture", f"{first['id']}:capture"),
            ("GET", "/v1/refunds", None),  # made already (after a long outage)? Then it is not made again.
            ("POST", "/v1/refunds", f"{refund['id']}:refund"),
            ("POST", "/v1/payment_intents", f"{second['id']}:authorize:0"),
            ("POST", "/v1/payment_intents/pi_S2/cancel", f"{second['id']}:cancel"),
        ]
        create = parse_qs(scripted.requests[0]["body"])
        assert create["capture_method"] == ["manual"] and create["confirm"] == ["true"]
        assert create["payment_method"] == ["pm_card_visa"] and create["amount"] == ["5000"]
        assert create["currency"] == ["eur"] and create["metadata[evpay_payment_intent_id]"] == [first["id"]]
        assert parse_qs(scripted.requests[1]["body"])["amount_to_capture"] == ["3000"]
        assert parse_qs(scripted.requests[2]["path"].split("?")[1])["payment_intent"] == ["pi_S1"]
        assert parse_qs(scripted.requests[3]["body"])["payment_intent"] == ["pi_S1"]
        assert {r["headers"]["Authorization"] for r in scripted.requests} == {"Bearer sk_test_evpay_platform"}
        assert refund["processor_reference"] == "re_S1"

    @pytest.mark.parametrize(
        "status,body,requests",
        [
            (500, stripe_error("api_error", "Internal error"), 2),  # the SDK retried once, with the same key
            (503, stripe_error("api_error", "Unavailable"), 2),
            (429, stripe_error("invalid_request_error", "Too many requests", code="rate_limit"), 1),
        ],
    )
    def test_5xx_and_429_are_503_with_nothing_changed(self, client, scripted, status, body, requests):
        intent = new_intent(client)
        scripted.answer(status, body, times=requests)
        assert_problem(authorize(client, intent["id"]), 503, "processor_unavailable")
        assert len(scripted.requests) == requests
        after = PaymentIntent.objects.get(pk=intent["id"])
        assert (after.status, after.processor_reference, after.processing_action) == (
            "requires_authorization",
            None,
            None,
        )
        assert not Event.objects.filter(type__startswith="payment_intent.authoriz").exists()
        # The retry is the same attempt: the same key, so Stripe would answer it with the first one's result.
        scripted.answer(200, stripe_intent("pi_R1"))
        assert authorize(client, intent["id"]).json()["status"] == "authorized"
        assert {key for _, _, key in _keys(scripted)} == {f"{intent['id']}:authorize:0"}

    def test_time_out_is_503(self, client, scripted, settings):
        settings.STRIPE_MAX_NETWORK_RETRIES = 0
        intent = new_intent(client)
        scripted.answer(200, stripe_intent("pi_T1"), delay=2)
        assert_problem(authorize(client, intent["id"]), 503, "processor_unavailable")
        assert PaymentIntent.objects.get(pk=intent["id"]).status == "requires_authorization"

    def test_decline_code_is_stripes_and_a_new_attempt_gets_a_new_key(self, client, scripted):
        intent = new_intent(client)
        scripted.answer(
            402,
            stripe_error(
                "card_error",
                "Your card has insufficient funds.",
                code="card_declined",
                decline_code="insufficient_funds",
            ),
        )
        problem = assert_problem(authorize(client, intent["id"]), 402, "card_declined")
        assert problem["decline_code"] == "insufficient_funds"
        assert PaymentIntent.objects.get(pk=intent["id"]).last_payment_error == {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        }
        scripted.answer(200, stripe_intent("pi_D2"))
        assert authorize(client, intent["id"]).json()["status"] == "authorized"
        assert [key for _, _, key in _keys(scripted)] == [f"{intent['id']}:authorize:0", f"{intent['id']}:authorize:1"]

    def test_three_d_secure_is_a_decline_and_the_hold_is_released(self, client, scripted):
        intent = new_intent(client)
        scripted.answer(200, stripe_intent("pi_3DS", status="requires_action"))
        scripted.answer(200, stripe_intent("pi_3DS", status="canceled"))
        problem = assert_problem(authorize(client, intent["id"]), 402, "card_declined")
        assert problem["decline_code"] == "authentication_required"
        assert _keys(scripted)[1] == (
            "POST",
            "/v1/payment_intents/pi_3DS/cancel",
            f"{intent['id']}:authorize:0:release",
        )

    def test_refused_capture_is_502_and_the_intent_stays_authorized(self, client, scripted):
        scripted.answer(200, stripe_intent("pi_X1"))
        intent = authorized(client)
        scripted.answer(
            400,
            stripe_error(
                "invalid_request_error",
                "This PaymentIntent could not be captured.",
                code="payment_intent_unexpected_state",
            ),
        )
        assert_problem(
            client.post(f"{INTENTS}/{intent['id']}/capture", {}, format="json"), 502, "processor_unavailable"
        )
        after = PaymentIntent.objects.get(pk=intent["id"])
        assert (after.status, after.amount_captured, after.processing_action) == ("authorized", 0, None)

    def test_refund_refused_by_stripe_fails_and_one_left_pending_is_retried_with_its_key(self, client, scripted):
        scripted.answer(200, stripe_intent("pi_F1"))
        scripted.answer(200, stripe_intent("pi_F1", status="succeeded"))
        intent = authorized(client)
        client.post(f"{INTENTS}/{intent['id']}/capture", {}, format="json")

        scripted.answer(200, stripe_list())
        scripted.answer(
            400, stripe_error("invalid_request_error", "Charge ch_3Test has been disputed.", code="charge_disputed")
        )
        failed = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 100}, format="json").json()
        assert failed["status"] == "failed" and "disputed" in failed["failure_reason"]

        scripted.answer(200, stripe_list())
        scripted.answer(500, stripe_error("api_error", "Internal error"), times=2)
        pending = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 200}, format="json").json()
        assert pending["status"] == "pending"
        scripted.answer(200, stripe_list())
        scripted.answer(200, {"id": "re_F2", "object": "refund", "status": "succeeded", "amount": 200})
        Refund.objects.filter(pk=pending["id"]).update(attempted_at=timezone.now() - timedelta(hours=1))
        assert retry_pending_refunds() == 1
        assert Refund.objects.get(pk=pending["id"]).processor_reference == "re_F2"
        refund_keys = [key for method, path, key in _keys(scripted) if (method, path) == ("POST", "/v1/refunds")]
        assert refund_keys == [f"{failed['id']}:refund"] + [f"{pending['id']}:refund"] * 3
        assert PaymentIntent.objects.get(pk=intent["id"]).amount_refunded == 200

    def test_a_refund_stripe_already_made_is_not_made_again(self, client, scripted):
        # E.g. retried after an outage longer than Stripe keeps idempotency keys (24 h).
        scripted.answer(200, stripe_intent("pi_L1"))
        scripted.answer(200, stripe_intent("pi_L1", status="succeeded"))
        intent = authorized(client)
        client.post(f"{INTENTS}/{intent['id']}/capture", {}, format="json")
        scripted.answer(200, stripe_list())
        scripted.answer(500, stripe_error("api_error", "Internal error"), times=2)
        pending = client.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 300}, format="json").json()
        made = {"id": "re_L1", "object": "refund", "status": "succeeded", "amount": 300}
        other = {"id": "re_L0", "object": "refund", "status": "succeeded", "amount": 5, "metadata": {}}
        scripted.answer(200, stripe_list(other, {**made, "metadata": {"evpay_refund_id": pending["id"]}}))
        Refund.objects.filter(pk=pending["id"]).update(attempted_at=timezone.now() - timedelta(days=2))
        assert retry_pending_refunds() == 1
        assert Refund.objects.get(pk=pending["id"]).processor_reference == "re_L1"
        assert [m for m, path, _ in _keys(scripted) if path == "/v1/refunds"] == ["GET", "POST", "POST", "GET"]

    def test_an_operators_own_key_overrides_the_platform_key(self, client, operator, other_client, scripted):
        services.stripe_account_set(operator=operator, secret_key="sk_test_operator_own_key")
        scripted.answer(200, stripe_intent("pi_K1"))
        scripted.answer(200, stripe_intent("pi_K2"))
        authorized(client)
        authorized(other_client)
        assert [r["headers"]["Authorization"] for r in scripted.requests] == [
            "Bearer sk_test_operator_own_key",
            "Bearer sk_test_evpay_platform",
        ]

    def test_no_key_at_all_is_503(self, client, scripted, settings):
        settings.STRIPE_SECRET_KEY = ""
        intent = new_intent(client)
        assert_problem(authorize(client, intent["id"]), 503, "processor_unavailable")
        assert scripted.requests == []


# --- settings and the admin ---------------------------------------------------------------------------------------


def test_an_unknown_processor_stops_the_service_at_start_up():
    env = {**os.environ, "PAYMENT_PROCESSOR": "bogus", "DJANGO_SETTINGS_MODULE": "evpay.settings.local"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "PAYMENT_PROCESSOR='bogus' is not a payment processor; use one of: simulator, stripe." in result.stderr


def test_stripe_calls_must_fit_well_inside_the_claim_timeout():
    check_processor_settings()  # the defaults fit
    with override_settings(STRIPE_TIMEOUT=20, STRIPE_MAX_NETWORK_RETRIES=1, PAYMENT_PROCESSOR_CLAIM_TIMEOUT=60):
        with pytest.raises(ImproperlyConfigured, match="PAYMENT_PROCESSOR_CLAIM_TIMEOUT"):
            check_processor_settings()


@pytest.mark.django_db
def test_operator_sets_its_stripe_key_in_the_admin_encrypted_and_never_shown(operator, other_operator):
    staff = Client()
    staff.force_login(operator_user_create(operator=operator, username="ops", password="pw-123456", role="admin"))
    form = staff.get("/admin/payments/stripeaccount/add/").content.decode()
    assert other_operator.name not in form  # only its own operator to choose
    response = staff.post(
        "/admin/payments/stripeaccount/add/",
        {"operator": operator.pk, "new_secret_key": "sk_live_51abcdefghijklmnopWXYZ"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = StripeAccount.objects.get(operator=operator)
    assert account.secret_key == "sk_live_51abcdefghijklmnopWXYZ" and account.key_hint == "sk_live_…WXYZ"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key FROM payments_stripeaccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert "abcdefghijklmnop" not in stored
    for url in ("/admin/payments/stripeaccount/", f"/admin/payments/stripeaccount/{quote(account.pk)}/change/"):
        page = staff.get(url).content.decode()
        assert "sk_live_…WXYZ" in page and "abcdefghijklmnop" not in page
    bad = staff.post(
        f"/admin/payments/stripeaccount/{quote(account.pk)}/change/", {"new_secret_key": "pk_live_nope123"}
    )
    assert bad.status_code == 200 and "starts with sk_" in bad.content.decode()
    assert StripeAccount.objects.get(operator=operator).secret_key == "sk_live_51abcdefghijklmnopWXYZ"


@pytest.mark.django_db(transaction=True)
def test_parallel_refunds_on_stripe_never_sum_past_the_captured_amount(client, on_localstripe, parallel):
    from rest_framework.test import APIClient

    intent = authorized(client, 5000)
    client.post(f"{INTENTS}/{intent['id']}/capture", {"amount_to_capture": 4000}, format="json")

    def refund(i):
        c = APIClient()
        c.credentials(HTTP_X_API_KEY=client.raw_key)
        return c.post(REFUNDS, {"payment_intent_id": intent["id"], "amount": 700}, format="json").status_code

    statuses = parallel(refund, 8)
    assert sorted(statuses) == [201] * 5 + [400] * 3, statuses  # 5 * 700 = 3500 <= 4000 < 6 * 700
    assert client.get(f"{INTENTS}/{intent['id']}").json()["amount_refunded"] == 3500
    theirs = on_localstripe.refunds_of(intent["processor_reference"])
    assert sorted(r.amount for r in theirs) == [700] * 5
    assert {r.id for r in theirs} == set(
        Refund.objects.filter(payment_intent_id=intent["id"]).values_list("processor_reference", flat=True)
    )
