"""A Stripe-configured deployment (a real gunicorn, configured only through its environment) driven over HTTP
through the contract against localstripe, the money checked on both sides; and a deployment with an unknown
processor that refuses to start."""

import subprocess
import sys

import pytest
import requests

from evpay.core.services import api_key_create
from tests.conftest import ROOT, free_port, worker_env
from tests.stack_support import Gunicorn
from tests.stripe_support import LocalStripe


@pytest.fixture
def localstripe(tmp_path):
    server = LocalStripe(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stripe_deployment(transactional_db, localstripe, tmp_path):
    env = worker_env(
        PROMETHEUS_MULTIPROC_DIR=tmp_path,
        PAYMENT_PROCESSOR="stripe",
        STRIPE_SECRET_KEY="sk_test_deployment",
        STRIPE_API_BASE=localstripe.url,
    )
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_refunds_through_a_stripe_deployment_money_on_both_sides(operator, localstripe, stripe_deployment):
    _, key = api_key_create(operator=operator, scopes=["payments:write"])
    api = requests.Session()
    api.headers.update({"X-API-Key": key})

    def post(path, body, **headers):
        return api.post(f"{stripe_deployment}{path}", json=body, headers=headers, timeout=30)

    intent = post("/v1/payment-intents", {"amount": 5000, "currency": "EUR"}).json()
    assert intent["processor"] == "stripe"
    authorized = post(
        f"/v1/payment-intents/{intent['id']}/authorize",
        {"payment_method": {"type": "card_present", "token": "pm_card_visa"}},
    ).json()
    assert authorized["status"] == "authorized"
    reference = authorized["processor_reference"]
    assert localstripe.client().v1.payment_intents.retrieve(reference).status == "requires_capture"
    assert post(f"/v1/payment-intents/{intent['id']}/capture", {"amount_to_capture": 4000}).json()["amount_captured"]

    first = post("/v1/refunds", {"payment_intent_id": intent["id"], "amount": 1500}, **{"Idempotency-Key": "r-1"})
    replay = post("/v1/refunds", {"payment_intent_id": intent["id"], "amount": 1500}, **{"Idempotency-Key": "r-1"})
    assert first.status_code == replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    rest = post("/v1/refunds", {"payment_intent_id": intent["id"]}).json()
    assert (first.json()["status"], rest["status"], rest["amount"]) == ("succeeded", "succeeded", 2500)
    too_much = post("/v1/refunds", {"payment_intent_id": intent["id"], "amount": 1})
    assert too_much.status_code == 400 and too_much.json()["code"] == "amount_exceeds_refundable"

    ours = api.get(f"{stripe_deployment}/v1/refunds", params={"payment_intent_id": intent["id"]}, timeout=30).json()
    assert sorted(r["amount"] for r in ours["results"]) == [1500, 2500]
    assert api.get(f"{stripe_deployment}/v1/payment-intents/{intent['id']}", timeout=30).json()["amount_refunded"] == (
        4000
    )
    theirs = localstripe.refunds_of(reference)
    assert sorted((r.id, r.amount) for r in theirs) == sorted(
        (r["processor_reference"], r["amount"]) for r in ours["results"]
    )
    assert localstripe.amount_received(reference) == 4000


def test_a_deployment_with_an_unknown_processor_refuses_to_start(tmp_path):
    env = worker_env(
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        GUNICORN_WORKERS=1,
        PROMETHEUS_MULTIPROC_DIR=tmp_path,
        PAYMENT_PROCESSOR="paypal",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "evpay.wsgi:application"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PAYMENT_PROCESSOR='paypal' is not a payment processor" in result.stderr
