"""/metrics: counters merged across processes, gauges computed from the database."""

import re
import time

import pytest
import requests

from tests.conftest import wait_for, worker_env
from tests.stack_support import Gunicorn
from webhooks.models import WebhookDelivery


@pytest.fixture
def web_process(metrics_dir, transactional_db, tmp_path):
    """A real gunicorn web process on the test database, sharing the worker's metrics directory."""
    # Two gunicorn workers import Django: on a loaded 2-core machine that can take a while (Gunicorn waits 120 s).
    server = Gunicorn(worker_env(PROMETHEUS_MULTIPROC_DIR=metrics_dir), tmp_path / "gunicorn.log", workers=2)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _sample(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


@pytest.mark.django_db(transaction=True)
def test_delivery_counted_in_a_worker_shows_in_a_web_scrape(client, receiver, celery_worker, web_process):
    before = requests.get(f"{web_process}/metrics", timeout=5).text
    succeeded_before = _sample(before, "evpay_webhook_deliveries_total", '{outcome="succeeded"}') or 0.0

    response = client.post(
        "/api/v1/webhooks", {"url": receiver.url, "event_types": ["payment_intent.created"]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert client.post("/v1/payment-intents", {"amount": 900, "currency": "EUR"}, format="json").status_code == 201
    wait_for(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), message="the delivery")

    # Every web process (two gunicorn workers here) answers with the worker's count merged in.
    for _ in range(4):
        text = requests.get(f"{web_process}/metrics", timeout=5).text
        assert _sample(text, "evpay_webhook_deliveries_total", '{outcome="succeeded"}') == succeeded_before + 1
        assert _sample(text, "evpay_webhook_delivery_seconds_count", '{outcome="succeeded"}') >= 1
        assert _sample(text, "evpay_payment_intents", '{status="requires_authorization"}') == 1
        time.sleep(0.05)


@pytest.mark.django_db
def test_business_gauges_from_the_database(client, anon_client, operator):
    from terminals.models import Terminal

    Terminal.objects.create(operator=operator, serial_number="T-1", status="online")
    Terminal.objects.create(operator=operator, serial_number="T-2", status="faulted")
    intent = client.post("/v1/payment-intents", {"amount": 1234, "currency": "EUR"}, format="json").json()
    client.post(
        f"/v1/payment-intents/{intent['id']}/authorize",
        {"payment_method": {"type": "card_present", "token": "tok_visa"}},
        format="json",
    )
    client.post(f"/v1/payment-intents/{intent['id']}/capture", {}, format="json")

    text = anon_client.get("/metrics").content.decode()
    assert _sample(text, "evpay_payment_intents", '{status="captured"}') == 1
    assert _sample(text, "evpay_captured_amount_minor_units_total", '{currency="EUR"}') == 1234
    assert _sample(text, "evpay_terminals", '{status="online"}') == 1
    assert _sample(text, "evpay_terminals", '{status="faulted"}') == 1
    assert _sample(text, "evpay_charge_sessions_active", '{status="charging"}') == 0
    assert _sample(text, "evpay_connectors", '{status="AVAILABLE"}') == 0
    assert _sample(text, "evpay_webhook_backlog") == 0
    assert _sample(text, "evpay_business_metrics_up") == 1
    assert "evpay_cpms_adapter_calls" in text


def _parsed(text: str, name: str, **labels) -> float:
    """The sum of `name`'s samples with these labels (label order differs between single and multiprocess)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.django_db(transaction=True)
def test_histograms_and_counters_of_a_worker_merge_into_a_web_scrape(client, operator, celery_worker, web_process):
    """A charge start: the worker sends the start command (CPMS call latency, a histogram) and starts the
    session (a counter); every web process shows both, with buckets that add up across processes."""
    from charging.models import ChargeSession
    from tests.charging_support import (
        START_URL,
        authorized_intent,
        make_station,
        make_tariff,
        make_terminal,
        start_body,
    )

    call = {"adapter_type": "simulator", "operation": "start_session", "outcome": "success"}
    before = requests.get(f"{web_process}/metrics", timeout=5).text
    count_before = _parsed(before, "evpay_cpms_adapter_call_duration_seconds_count", **call)
    started_before = _parsed(before, "evpay_charge_sessions_started_total")

    make_tariff(operator)
    make_station(operator)
    body = start_body(make_terminal(operator), authorized_intent(operator))
    session_id = client.post(START_URL, body, format="json").json()["id"]
    wait_for(lambda: ChargeSession.objects.filter(pk=session_id, status="charging").exists(), message="charging")

    for _ in range(3):  # whichever gunicorn worker answers
        text = requests.get(f"{web_process}/metrics", timeout=5).text
        assert _parsed(text, "evpay_cpms_adapter_call_duration_seconds_count", **call) == count_before + 1
        assert _parsed(text, "evpay_cpms_adapter_call_duration_seconds_bucket", le="+Inf", **call) == count_before + 1
        assert _parsed(text, "evpay_charge_sessions_started_total") == started_before + 1
        task = "charging.tasks.charge_session_send_start"
        assert _parsed(text, "evpay_celery_tasks_total", queue="celery", task=task, outcome="succeeded") >= 1
