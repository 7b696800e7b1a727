"""The metrics an on-call reads, exercised through the real code paths and scraped from /metrics:

- authorizations by outcome and decline code, processor calls and latency, money moved by operation and
  currency, CPMS call latency as a histogram, session starts/failures/completions by reason, webhook attempts
  by outcome, Celery tasks by outcome, readiness, queue lengths, django-prometheus database metrics;
- every metric the Grafana dashboard and the alert rules (ops/) name is exported;
- no label carries an id.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from django.db import IntegrityError, transaction
from prometheus_client.parser import text_string_to_metric_families

from charging import services as charging_services
from payments import services as payment_services
from payments.models import PaymentIntent
from tests.charging_support import make_station, make_tariff, make_terminal, start_session
from webhooks.models import WebhookDelivery

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "evpay.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels, durations and strings left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group(0) in PROMQL_KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def test_promql_metric_names():
    expr = (
        "histogram_quantile(0.95, sum by (le, view) (rate(django_http_requests_latency_seconds_by_view_method_bucket"
        '{view=~"a.*"}[5m]))) / on (view) group_left sum(evpay:x:rate5m) > 0.5 and absent(evpay_business_metrics_up)'
    )
    assert promql_metric_names(expr) == {
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "evpay:x:rate5m",
        "evpay_business_metrics_up",
    }


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> tuple[list[str], set[str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    return [r["expr"] for r in rules], {r["record"] for r in rules if "record" in r}


def _exercise_every_path(operator, receiver):
    """Drive each instrumented seam once through the services, as the API and the workers do."""
    from payments.tasks import expire_authorizations
    from webhooks.services import webhook_delivery_attempt, webhook_subscription_create

    subscription = webhook_subscription_create(
        operator=operator, url=receiver.url, event_types=["payment_intent.created"], description=""
    )
    for token in ("tok_visa", "tok_chargeDeclinedInsufficientFunds", "tok_processorUnavailable", "tok_bogus"):
        intent = payment_services.payment_intent_create(operator=operator, amount=1500, currency="EUR")
        try:
            payment_services.payment_intent_authorize(intent=intent, token=token)
        except Exception:  # the declines and failures are what is being counted
            pass
    authorized = PaymentIntent.objects.get(status="authorized")
    captured = payment_services.payment_intent_capture(intent=authorized, amount_to_capture=1200)
    payment_services.refund_create(intent=captured, amount=300)
    to_void = payment_services.payment_intent_create(operator=operator, amount=700, currency="SEK")
    to_void = payment_services.payment_intent_authorize(intent=to_void, token="tok_mastercard")
    payment_services.payment_intent_void(intent=to_void)

    make_tariff(operator)
    make_station(operator, cpms_station_id="CP-1")
    make_station(operator, station_id="DE*EVP*S2", cpms_station_id="SIM-REJECT-2")
    accepted = start_session(operator, terminal=make_terminal(operator, serial="SN-A"))
    charging_services.charge_session_start_command_send(session=accepted)
    charging_services.charge_session_complete(session=accepted, energy_wh=1000)
    rejected = start_session(operator, terminal=make_terminal(operator, serial="SN-B"), station_id="DE*EVP*S2")
    charging_services.charge_session_start_command_send(session=rejected)

    try:  # a query that fails: django_db_errors_total
        with transaction.atomic():
            make_terminal(operator, serial="SN-A")
    except IntegrityError:
        pass

    for delivery in WebhookDelivery.objects.filter(subscription=subscription):
        webhook_delivery_attempt(delivery_id=delivery.pk)
    expire_authorizations.apply()


def _scrape(anon_client) -> list:
    text = anon_client.get("/metrics").content.decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples, name, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


class Scrape:
    """/metrics after exercising every path; counters are read as the increase over a scrape before (the
    test process's registry lives as long as the process)."""

    def __init__(self, before, after):
        self.before, self.samples = before, after

    def increase(self, name, **labels) -> float:
        return _value(self.samples, name, **labels) - _value(self.before, name, **labels)

    def value(self, name, **labels) -> float:
        return _value(self.samples, name, **labels)


@pytest.fixture
def scraped(anon_client, operator, receiver, django_capture_on_commit_callbacks):
    before = _scrape(anon_client)
    with django_capture_on_commit_callbacks(execute=True):
        _exercise_every_path(operator, receiver)
    return Scrape(before, _scrape(anon_client))


@pytest.mark.django_db
def test_money_flow_is_counted_by_outcome_code_and_currency(scraped):
    auth = "evpay_payment_authorizations_total"
    # tok_visa here, tok_mastercard for the void, two tok_visa for the sessions (tests/charging_support.py)
    assert scraped.increase(auth, processor="simulator", outcome="approved") == 4
    assert scraped.increase(auth, outcome="declined", decline_code="insufficient_funds") == 1
    assert scraped.increase(auth, outcome="unavailable") == 1
    assert scraped.increase(auth, outcome="invalid_payment_method") == 1
    calls = "evpay_payment_processor_calls_total"
    assert scraped.increase(calls, operation="capture", outcome="succeeded") == 2  # the API's and the session's
    assert scraped.increase(calls, operation="void", outcome="succeeded") == 2  # the API's and the failed session's
    buckets = [s for s in scraped.samples if s.name == "evpay_payment_processor_call_duration_seconds_bucket"]
    assert {s.labels["operation"] for s in buckets} >= {"authorize", "capture", "void"}
    assert scraped.increase("evpay_payment_processor_call_duration_seconds_count", operation="authorize") == 7
    amount = "evpay_payment_amount_minor_units_total"
    assert scraped.increase(amount, operation="capture", currency="EUR") >= 1200
    assert scraped.increase(amount, operation="void", currency="SEK") == 700  # the released hold
    assert scraped.increase("evpay_payment_operations_total", operation="authorize", currency="SEK") == 1
    assert scraped.increase("evpay_payment_operations_total", operation="void", currency="SEK") == 1
    assert scraped.increase(calls, operation="refund", outcome="succeeded") == 1
    assert scraped.increase("evpay_payment_operations_total", operation="refund", currency="EUR") == 1
    assert scraped.increase(amount, operation="refund", currency="EUR") == 300


@pytest.mark.django_db
def test_charging_cpms_webhooks_and_celery_are_counted(scraped):
    assert scraped.increase("evpay_charge_sessions_started_total") == 1
    assert scraped.increase("evpay_charge_sessions_failed_total", reason="cpms_rejected") == 1
    assert scraped.increase("evpay_charge_sessions_completed_total", reason="completed") == 1
    assert scraped.value("evpay_charge_sessions_overdue", status="pending") == 0
    cpms = "evpay_cpms_adapter_call_duration_seconds_count"
    assert scraped.increase(cpms, adapter_type="simulator", operation="start_session", outcome="success") == 1
    assert scraped.increase(cpms, adapter_type="simulator", operation="start_session", outcome="rejected") == 1
    assert any(s.name == "evpay_cpms_adapter_call_duration_seconds_bucket" for s in scraped.samples)
    assert scraped.increase("evpay_webhook_deliveries_total", outcome="succeeded") >= 1
    assert scraped.increase("evpay_webhook_delivery_seconds_count", outcome="succeeded") >= 1
    assert scraped.value("evpay_webhook_backlog_by_state", state="new") == 0
    assert scraped.increase("evpay_celery_tasks_total", task="payments.tasks.expire_authorizations") == 1
    assert scraped.value("evpay_readiness_check_up", check="database") == 1
    assert scraped.value("evpay_readiness_check_up", check="migrations") == 1
    assert scraped.increase("django_db_execute_total", vendor="postgresql") > 0  # django-prometheus backend
    assert scraped.value("evpay_business_metrics_up") == 1


@pytest.mark.django_db
def test_every_metric_of_the_dashboard_and_the_rules_is_exported(scraped):
    exported = {s.name for s in scraped.samples}
    exprs, recorded = rule_exprs()
    named = set().union(*(promql_metric_names(e) for e in dashboard_exprs() + exprs))
    assert len(named) > 30
    missing = sorted(named - exported - recorded - PROMETHEUS_OWN)
    assert not missing, f"named in ops/ but not exported by /metrics: {missing}"


@pytest.mark.django_db
def test_no_label_carries_an_id(scraped):
    id_like = re.compile(r"^(pi|chs|trm|the|whs|evt|whd|map|trf|op|re|req)_[A-Za-z0-9]{6,}$")
    for sample in scraped.samples:
        for name, value in sample.labels.items():
            assert not id_like.match(value), (sample.name, name, value)


@pytest.mark.django_db
def test_queue_lengths_are_read_from_the_broker(anon_client, settings):
    """Messages on a queue that no worker consumes (a test worker of the session may be running) are counted."""
    from evpay.celery import app

    idle = "metrics-test-idle"
    settings.CELERY_TASK_QUEUES = {**settings.CELERY_TASK_QUEUES, idle: {}}
    before = _value(_scrape(anon_client), "evpay_celery_queue_length", queue=idle)
    with app.connection_for_write() as conn:
        for _ in range(2):
            app.send_task("webhooks.tasks.deliver", args=["whd_none"], queue=idle, connection=conn)
    try:
        samples = _scrape(anon_client)
        assert _value(samples, "evpay_celery_queue_length", queue=idle) == before + 2
        assert {s.labels["queue"] for s in samples if s.name == "evpay_celery_queue_length"} == {
            "celery",
            "webhooks",
            "webhooks_retry",
            idle,
        }
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(idle)
