"""`manage.py seed_demo`: a complete demo operator, made through the services, idempotent."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from charging.models import ChargeSession, Tariff
from charging.selectors import tariff_for_mapping
from evpay.core.models import ApiKey, Operator
from infrastructure.models import Connector, StationMapping
from payments.models import PaymentIntent
from terminals.models import Terminal, TerminalHealthEvent
from webhooks.models import Event, WebhookSubscription


def _counts(operator) -> dict:
    return {
        "tariffs": Tariff.objects.filter(operator=operator).count(),
        "mappings": StationMapping.objects.live().filter(operator=operator).count(),
        "connectors": Connector.objects.filter(operator=operator).count(),
        "terminals": Terminal.objects.filter(operator=operator).count(),
        "health_events": TerminalHealthEvent.objects.filter(operator=operator).count(),
        "sessions": ChargeSession.objects.filter(operator=operator).count(),
        "intents": PaymentIntent.objects.filter(operator=operator).count(),
        "subscriptions": WebhookSubscription.objects.filter(operator=operator).count(),
        "events": Event.objects.filter(operator=operator).count(),
    }


def _seed(capsys) -> str:
    call_command("seed_demo")
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.mark.django_db
def test_seed_demo_creates_a_realistic_operator_once(capsys):
    first_key = _seed(capsys)
    operator = Operator.objects.get(name="Demo CPO")
    counts = _counts(operator)
    assert counts["tariffs"] == 2 and counts["mappings"] == 3 and counts["connectors"] == 4
    assert counts["terminals"] == 5 and counts["health_events"] >= 10
    assert counts["sessions"] == 4 and counts["intents"] == 4 and counts["subscriptions"] == 1

    default = Tariff.objects.get(operator=operator, is_default=True)
    assert (default.currency, str(default.vat_rate_percent), default.preauthorize_amount) == ("EUR", "19.00", 5000)
    fast = tariff_for_mapping(StationMapping.objects.get(operator=operator, station_id="DE*EVP*S0002"))
    assert fast is not None and not fast.is_default
    statuses = sorted(Terminal.objects.filter(operator=operator).values_list("status", flat=True))
    assert statuses == ["maintenance", "online", "online", "online", "online"]
    assert sorted(ChargeSession.objects.filter(operator=operator).values_list("status", flat=True)) == [
        "charging",
        "completed",
        "completed",
        "completed",
    ]
    for session in ChargeSession.objects.filter(operator=operator, status="completed").select_related("payment_intent"):
        assert session.payment_intent.status == "captured"
        assert 0 < session.amount_captured == session.payment_intent.amount_captured == session.cost_total
    running = ChargeSession.objects.get(operator=operator, status="charging")
    assert running.payment_intent.status == "authorized" and running.energy_wh > 0
    subscription = WebhookSubscription.objects.get(operator=operator)
    assert subscription.is_active and subscription.url == "https://example.com/evpay-webhooks"
    assert not subscription.deliveries.exists()  # made last: the seed's own events are not sent to it

    second_key = _seed(capsys)
    assert second_key != first_key and second_key.startswith("evp_")
    assert _counts(operator) == counts, "a second run adds nothing but a new API key"
    assert ApiKey.objects.filter(operator=operator).count() == 2
    assert Operator.objects.count() == 1

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=second_key)
    terminals = client.get("/v1/terminals")
    assert terminals.status_code == 200 and len(terminals.json()["results"]) == 5
    location = next(t["location"] for t in terminals.json()["results"] if t["serial_number"] == "DEMO-TRM-0001")
    assert location["country"] == "DE" and location["city"] == "Berlin"
    sessions = client.get("/v1/adhoc-charges")
    assert sessions.status_code == 200
    assert sorted(s["status"] for s in sessions.json()["results"]) == [
        "charging",
        "completed",
        "completed",
        "completed",
    ]
    mappings = client.get("/v1/charging-infrastructure/mappings")
    assert mappings.status_code == 200 and len(mappings.json()["results"]) == 3
    webhooks = client.get("/api/v1/webhooks")
    assert webhooks.status_code == 200 and len(webhooks.json()["results"]) == 1
    tariffs = client.get("/v1/tariffs")
    assert tariffs.status_code == 200 and len(tariffs.json()["results"]) == 2
