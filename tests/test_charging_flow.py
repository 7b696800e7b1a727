"""Whole sessions through the API with the simulator CPMS and a real Celery worker, and parallel starts."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from charging.models import ChargeSession
from charging.tasks import fail_unstarted_sessions
from infrastructure.models import AdapterCall
from payments.models import PaymentIntent
from tests.charging_support import START_URL, URL, make_station, make_tariff, make_terminal, start_body
from tests.conftest import wait_for
from webhooks.models import Event

VISA = {"payment_method": {"type": "card_present", "token": "tok_visa"}}


def api_intent(client, amount=5000, currency="EUR"):
    intent = client.post("/v1/payment-intents", {"amount": amount, "currency": currency}, format="json").json()
    response = client.post(f"/v1/payment-intents/{intent['id']}/authorize", VISA, format="json")
    assert response.status_code == 200, response.content
    return PaymentIntent.objects.get(pk=intent["id"])


def session_status(client, session_id, status):
    def check():
        body = client.get(f"{URL}/{session_id}").json()
        return body if body["status"] == status else None

    return wait_for(check, message=f"session {session_id} {status}")


def event_types(object_id):
    return list(Event.objects.filter(data__object__id=object_id).order_by("created_at").values_list("type", flat=True))


def connector_status(client):
    return client.get("/v1/charging-infrastructure/connectors").json()["results"][0]["status"]


@pytest.mark.django_db(transaction=True)
def test_full_session_start_charge_complete_capture(client, operator, celery_worker):
    make_tariff(operator, price_per_kwh="0.59", session_fee="1.00", vat_rate_percent="19")
    make_station(operator)
    terminal = make_terminal(operator)
    intent = api_intent(client, amount=5000)
    # The new mapping's statuses were fetched at once, not at the next poll.
    wait_for(lambda: connector_status(client) == "AVAILABLE", message="the new mapping's statuses")

    response = client.post(START_URL, start_body(terminal, intent), format="json")
    assert response.status_code == 201 and response.json()["status"] == "pending"
    session_id = response.json()["id"]

    charging = session_status(client, session_id, "charging")
    assert charging["cpms_session_id"].startswith("SIM-") and charging["started_at"]
    assert event_types(session_id) == ["charge.started"]
    assert connector_status(client) == "CHARGING"  # ours charges on it: shown at once, no poll needed

    response = client.put(
        f"{URL}/{session_id}/progress",
        {"energy_wh": 12345, "measured_at": timezone.now().isoformat(), "power_kw": 11},
        format="json",
    )
    assert response.status_code == 200, response.content
    response = client.post(f"{URL}/{session_id}/complete", {"energy_wh": 12345}, format="json")
    assert response.status_code == 200, response.content
    done = response.json()
    # 12.345 kWh * 0.59 = 7.28355 + 1.00 fee = 8.28355 -> 828 cents; VAT 19 % = 157.32 -> 157; total 985.
    assert done["status"] == "completed" and done["cost"]["total"] == 985 and done["amount_captured"] == 985
    assert connector_status(client) == "AVAILABLE"
    paid = client.get(f"/v1/payment-intents/{intent.pk}").json()
    assert (paid["status"], paid["amount_captured"], paid["charge_session_id"]) == ("captured", 985, session_id)
    assert event_types(session_id) == ["charge.started", "charge.completed"]
    assert Event.objects.filter(type="payment_intent.captured", data__object__id=intent.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_cpms_refusing_the_start_fails_the_session_and_voids(client, operator, celery_worker):
    make_tariff(operator)
    make_station(operator, cpms_station_id="SIM-REJECT-1")
    intent = api_intent(client)
    session_id = client.post(START_URL, start_body(make_terminal(operator), intent), format="json").json()["id"]
    failed = session_status(client, session_id, "failed")
    assert failed["stop_reason"] == "cpms_rejected" and failed["amount_captured"] == 0
    # The worker voids the hold right after it commits the failed session (never in the same transaction).
    voided = wait_for(
        lambda: (body := client.get(f"/v1/payment-intents/{intent.pk}").json())["status"] != "authorized" and body,
        message="the intent voided",
    )
    assert (voided["status"], voided["void_reason"], voided["amount_capturable"]) == ("voided", "session_failed", 0)
    assert event_types(session_id) == ["charge.failed"]
    assert AdapterCall.objects.filter(operation="start_session").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_start_that_timed_out_is_never_sent_again_and_ends_in_a_stop(client, operator, celery_worker, settings):
    """The start may have reached the CPMS: it is not repeated; the start timeout fails the session, voids the hold
    and sends a stop, so that nothing charges unpaid."""
    make_tariff(operator)
    make_station(operator, cpms_station_id="SIM-TIMEOUT-1")
    intent = api_intent(client)
    session_id = client.post(START_URL, start_body(make_terminal(operator), intent), format="json").json()["id"]
    wait_for(lambda: AdapterCall.objects.filter(operation="start_session").exists(), message="start sent")
    assert client.get(f"{URL}/{session_id}").json()["status"] == "pending"
    ChargeSession.objects.filter(pk=session_id).update(created_at=timezone.now() - timedelta(minutes=5))
    assert fail_unstarted_sessions() == 1
    failed = session_status(client, session_id, "failed")
    assert failed["stop_reason"] == "cpms_timeout" and failed["amount_captured"] == 0
    assert client.get(f"/v1/payment-intents/{intent.pk}").json()["status"] == "voided"
    wait_for(lambda: AdapterCall.objects.filter(operation="stop_session").exists(), message="stop sent")
    # One start call in all (the simulator's timeouts are AdapterTimeouts: retried never, for a command).
    assert AdapterCall.objects.filter(operation="start_session").count() == 1


@pytest.mark.django_db(transaction=True)
def test_cost_cap_stops_at_the_cpms_and_captures_the_cap(client, operator, celery_worker):
    make_tariff(operator, price_per_kwh="0.50", vat_rate_percent="21")
    make_station(operator)
    intent = api_intent(client, amount=1000)
    session_id = client.post(START_URL, start_body(make_terminal(operator), intent), format="json").json()["id"]
    session_status(client, session_id, "charging")
    # 16.6 kWh * 0.50 = 8.30 -> 830; VAT 21 % = 174.3 -> 174; total 1004 >= the 1000 cap.
    body = client.put(
        f"{URL}/{session_id}/progress", {"energy_wh": 16600, "measured_at": timezone.now().isoformat()}, format="json"
    ).json()
    assert (body["status"], body["stop_reason"], body["cost"]["total"]) == ("stopping", "cost_cap_reached", 1004)
    wait_for(
        lambda: AdapterCall.objects.filter(operation="stop_session", outcome="success").exists(),
        message="the stop command at the CPMS",
    )
    assert event_types(session_id) == ["charge.started", "charge.cost_cap_reached"]
    done = client.post(f"{URL}/{session_id}/complete", {}, format="json").json()
    assert (done["status"], done["stop_reason"], done["amount_captured"]) == ("completed", "cost_cap_reached", 1000)
    assert PaymentIntent.objects.get(pk=intent.pk).amount_captured == 1000


@pytest.mark.django_db(transaction=True)
def test_failed_capture_is_retried_by_the_worker(client, operator, celery_worker):
    make_tariff(operator, price_per_kwh="0.59", session_fee="1.00", vat_rate_percent="19")
    make_station(operator)
    intent = api_intent(client)
    session_id = client.post(START_URL, start_body(make_terminal(operator), intent), format="json").json()["id"]
    session_status(client, session_id, "charging")
    client.put(
        f"{URL}/{session_id}/progress", {"energy_wh": 12345, "measured_at": timezone.now().isoformat()}, format="json"
    )
    # The processor fails the capture in this process only; the worker's retry reaches a working processor.
    with override_settings(PAYMENT_SIMULATOR_FAIL=["capture"], CHARGE_PAYMENT_RETRY_DELAY=0):
        done = client.post(f"{URL}/{session_id}/complete", {}, format="json").json()
        assert done["status"] == "completed" and done["amount_captured"] == 0
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"
    wait_for(lambda: ChargeSession.objects.get(pk=session_id).amount_captured == 985, message="the retried capture")
    paid = PaymentIntent.objects.get(pk=intent.pk)
    assert (paid.status, paid.amount_captured) == ("captured", 985)


@pytest.mark.django_db(transaction=True)
def test_unreachable_cpms_then_start_timeout_job_fails_and_voids(client, operator, celery_worker):
    make_tariff(operator)
    make_station(operator, cpms_station_id="SIM-FAIL-1")
    intent = api_intent(client)
    session_id = client.post(START_URL, start_body(make_terminal(operator), intent), format="json").json()["id"]
    wait_for(
        lambda: AdapterCall.objects.filter(operation="start_session", outcome="failure").exists(),
        message="a failed start command",
    )
    assert client.get(f"{URL}/{session_id}").json()["status"] == "pending"
    ChargeSession.objects.filter(pk=session_id).update(created_at=timezone.now() - timedelta(seconds=121))
    fail_unstarted_sessions.delay()
    failed = session_status(client, session_id, "failed")
    assert failed["stop_reason"] == "cpms_timeout"
    wait_for(lambda: PaymentIntent.objects.get(pk=intent.pk).status == "voided", message="the void")
    assert PaymentIntent.objects.get(pk=intent.pk).void_reason == "session_failed"
    assert event_types(session_id) == ["charge.failed"]


@pytest.mark.django_db(transaction=True)
def test_parallel_starts_on_one_connector_one_session(client, operator, parallel):
    make_tariff(operator)
    make_station(operator)
    terminal = make_terminal(operator)
    intents = [api_intent(client) for _ in range(10)]

    def start(i):
        api = APIClient()
        api.credentials(HTTP_X_API_KEY=client.raw_key)
        response = api.post(START_URL, start_body(terminal, intents[i]), format="json")
        return response.status_code, response.json().get("code")

    results = parallel(start, 10)
    assert sorted(status for status, _ in results) == [201] + [409] * 9, results
    assert {code for status, code in results if status == 409} == {"connector_unavailable"}
    assert ChargeSession.objects.count() == 1
    winner = ChargeSession.objects.get().payment_intent_id
    assert set(PaymentIntent.objects.exclude(pk=winner).values_list("status", flat=True)) == {"authorized"}
    assert PaymentIntent.objects.exclude(pk=winner).filter(processing_action__isnull=False).count() == 0


@pytest.mark.django_db(transaction=True)
def test_start_racing_mapping_delete_never_errors(client, operator, parallel):
    from infrastructure.models import StationMapping
    from infrastructure.services import MappingInUse, mapping_delete

    make_tariff(operator)
    terminal = make_terminal(operator)
    for round_ in range(5):
        mapping = make_station(operator, station_id=f"RACE-{round_}", cpms_station_id=f"CP-R{round_}")
        intent = api_intent(client)

        def act(i, mapping=mapping, intent=intent, round_=round_):
            if i == 0:
                try:
                    mapping_delete(mapping=StationMapping.objects.get(pk=mapping.pk))
                    return "deleted"
                except MappingInUse:
                    return "in_use"
            api = APIClient()
            api.credentials(HTTP_X_API_KEY=client.raw_key)
            return api.post(
                START_URL, start_body(terminal, intent, station_id=f"RACE-{round_}"), format="json"
            ).status_code

        delete, start = parallel(act, 2)
        # Either the start won (the delete is refused) or the delete won (the start finds no station).
        assert (delete, start) in (("in_use", 201), ("deleted", 400)), (delete, start)
