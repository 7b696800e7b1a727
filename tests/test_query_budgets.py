"""Query budgets of the hot paths: how many round trips to PostgreSQL and how many commits each request may cost.

A query here is one message to the database, as Django logs it: a deferred statement travels with the next one
(evpay.core.queries.execute_deferred), and several statements of one message count once. A commit is one that
writes: an explicit COMMIT of a transaction (sent alone or at the end of a message), or a write statement run in
autocommit (each is a transaction of its own, with its WAL flush). Lists must cost the same whatever the page size
and however deep the cursor. A change that brings a query back fails here, whatever the machine's speed."""

import re
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from evpay.core.backends.postgresql.base import STATEMENT_SEPARATOR
from payments import services as payment_services
from payments.models import PaymentIntent
from payments.serializers import PaymentIntentSerializer, payment_intent_data
from tests.charging_support import START_URL, authorized_intent, make_station, make_tariff, make_terminal, start_body

INTENTS = "/v1/payment-intents"
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)


class Commits:
    """Counts the commits that write, on the default connection, while active."""

    def __init__(self):
        self.count = 0
        self.dirty = False  # a write since the last commit of a transaction

    def __call__(self, execute, sql, params, many, context):
        statements = sql.split(STATEMENT_SEPARATOR)  # the statements of one message
        ends_transaction = statements[-1].strip().upper() == "COMMIT"
        for statement in statements:
            if statement.strip().upper() == "COMMIT":
                self.count += self.dirty
                self.dirty = False
            elif _WRITE.match(statement):
                if connections["default"].in_atomic_block or ends_transaction:
                    self.dirty = True
                else:
                    self.count += 1  # autocommit: the statement is its own transaction
        return execute(sql, params, many, context)


@contextmanager
def counting_commits(monkeypatch):
    commits = Commits()
    wrapper = connections["default"]
    original = wrapper._commit

    def commit():
        result = original()  # a COMMIT that ends a message of deferred statements has been counted by then
        commits.count += commits.dirty
        commits.dirty = False
        return result

    monkeypatch.setattr(wrapper, "_commit", commit)
    with wrapper.execute_wrapper(commits):
        yield commits
    monkeypatch.undo()


@pytest.fixture
def warm(shared_cache, client):
    """Redis as the cache, as in production; one request first: the API key is read from the database once (and
    its last_used_at written, at most once a minute), not by the request measured."""
    client.get(INTENTS)
    return client


@pytest.mark.django_db(transaction=True)
class TestWritesCommitOnce:
    # A transaction's BEGIN travels with its first statement. Create: BEGIN with the Idempotency-Key's advisory
    # lock and its lookup; the intent, its event with its deliveries (one statement), the stored response and
    # COMMIT. The API key comes from the cache.
    def test_create_with_idempotency_key_is_one_commit(self, warm, monkeypatch, django_assert_max_num_queries):
        with counting_commits(monkeypatch) as commits, django_assert_max_num_queries(2):
            response = warm.post(INTENTS, {"amount": 500, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="k-1")
        assert response.status_code == 201, response.content
        assert commits.count == 1
        with counting_commits(monkeypatch) as commits:
            replay = warm.post(INTENTS, {"amount": 500, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="k-1")
        assert replay.json() == response.json() and replay.headers["Idempotent-Replayed"] == "true"
        assert commits.count == 0
        assert PaymentIntent.objects.count() == 1

    def test_refused_create_stores_its_answer_in_the_same_commit(self, warm, monkeypatch):
        with counting_commits(monkeypatch) as commits:
            response = warm.post(INTENTS, {"amount": -1, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="k-2")
        assert response.status_code == 400
        assert commits.count == 1  # the stored 400, nothing else
        assert warm.post(INTENTS, {"amount": -1, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 400
        assert PaymentIntent.objects.count() == 0

    # Health event: BEGIN with the key's advisory lock and its lookup; the terminal read with its lock; the
    # event, the terminal's changed columns, the stored response and COMMIT in one message.
    def test_health_event_is_one_commit(self, warm, operator, monkeypatch, django_assert_max_num_queries):
        terminal = make_terminal(operator)
        body = {"type": "heartbeat", "occurred_at": datetime.now(UTC).isoformat()}
        with counting_commits(monkeypatch) as commits, django_assert_max_num_queries(3):
            response = warm.post(f"/v1/terminals/{terminal.pk}/health-events", body, HTTP_IDEMPOTENCY_KEY="h-1")
        assert response.status_code == 201, response.content
        assert commits.count == 1

    def test_progress_is_one_commit(self, warm, operator, monkeypatch, django_assert_max_num_queries):
        session_id = _started_session(warm, operator)
        body = {"energy_wh": 1200, "measured_at": datetime.now(UTC).isoformat()}
        # The first reading starts the session: BEGIN with the session read with its lock, its connector read with
        # its lock; its connector's CHARGING written, with its event, the session's columns, `charge.started` and
        # COMMIT in the last message.
        with counting_commits(monkeypatch) as commits, django_assert_max_num_queries(4):
            response = warm.put(f"/v1/adhoc-charges/{session_id}/progress", body)
        assert response.status_code == 200, response.content
        assert commits.count == 1
        # Every later one: BEGIN with the session read with its lock (and its intent's refunds); its changed
        # columns with COMMIT.
        body = {"energy_wh": 1500, "measured_at": datetime.now(UTC).isoformat()}
        with counting_commits(monkeypatch) as commits, django_assert_max_num_queries(2):
            response = warm.put(f"/v1/adhoc-charges/{session_id}/progress", body)
        assert response.status_code == 200, response.content
        assert response.json()["energy_wh"] == 1500
        assert commits.count == 1

    def test_authorize_and_capture_commit_around_the_processor_call_only(
        self, warm, monkeypatch, django_assert_max_num_queries
    ):
        intent = warm.post(INTENTS, {"amount": 500, "currency": "EUR"}).json()
        # The key claimed (one statement); the intent; the claim (BEGIN with the lock, the UPDATE with COMMIT); the
        # result (BEGIN with the lock, the session paying with it for the event, the UPDATE and the event with
        # COMMIT); the stored response.
        with counting_commits(monkeypatch) as commits, django_assert_max_num_queries(8):
            response = warm.post(
                f"{INTENTS}/{intent['id']}/authorize",
                {"payment_method": {"type": "card_present", "token": "tok_visa"}},
                HTTP_IDEMPOTENCY_KEY="a-1",
            )
        assert response.status_code == 200, response.content
        assert commits.count <= 4  # the key, the claim, the result, the stored response
        with django_assert_max_num_queries(9):  # authorize's, and the claim asks whether a session uses it
            assert warm.post(f"{INTENTS}/{intent['id']}/capture", {}, HTTP_IDEMPOTENCY_KEY="c-1").status_code == 200


def _started_session(client, operator) -> str:
    make_station(operator, tariff=make_tariff(operator))
    terminal = make_terminal(operator, serial="SN-Q")
    intent = authorized_intent(operator, terminal=terminal)
    response = client.post(START_URL, start_body(terminal, intent))
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.mark.django_db
class TestReadsAreConstant:
    def test_get_one_intent(self, warm, operator, django_assert_max_num_queries):
        intent = payment_services.payment_intent_create(operator=operator, amount=100, currency="EUR")
        with django_assert_max_num_queries(1):  # the intent with its session's id (the API key: cached)
            assert warm.get(f"{INTENTS}/{intent.pk}").status_code == 200

    @pytest.mark.parametrize(
        "url",
        [
            INTENTS,
            "/v1/terminals",
            "/v1/adhoc-charges",
            "/v1/tariffs",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{subscription}/deliveries",
            "/v1/charging-infrastructure/mappings",
            "/v1/charging-infrastructure/connectors",
        ],
    )
    def test_list_costs_the_same_for_any_page_size_and_depth(self, warm, operator, url):
        url = url.format(subscription=_fill(warm, operator, 12))
        counts = []
        for query in ("?limit=2", "?limit=10"):
            with CaptureQueriesContext(connection) as captured:
                first = warm.get(url + query)
            assert first.status_code == 200, first.content
            assert len(first.json()["results"]) >= 2
            counts.append(len(captured))
            if first.json()["next"]:
                with CaptureQueriesContext(connection) as captured:
                    assert warm.get(first.json()["next"]).status_code == 200
                counts.append(len(captured))
        assert len(set(counts)) == 1, counts


def _fill(client, operator, n: int) -> str:
    """n of everything the lists show (sessions: 3, each needs its own station); returns a subscription id."""
    from django.db import transaction

    from webhooks.models import WebhookSubscription
    from webhooks.services import event_emit

    for i in range(n):
        WebhookSubscription.objects.create(
            operator=operator, url=f"https://example.com/{i}", event_types=["*"], secret=f"whsec_{i}"
        )
    subscription = WebhookSubscription.objects.filter(operator=operator).first()
    tariff = make_tariff(operator)
    for i in range(n):
        make_tariff(operator, name=f"T{i}", is_default=False)
        terminal = make_terminal(operator, serial=f"SN-F{i}")
        make_station(operator, station_id=f"DE*EVP*F{i}", cpms_station_id=f"CP-F{i}", tariff=tariff)
        intent = authorized_intent(operator, terminal=terminal)
        if i < 3:
            response = client.post(START_URL, start_body(terminal, intent, station_id=f"DE*EVP*F{i}"))
            assert response.status_code == 201, response.content
        with transaction.atomic():
            event_emit(operator=operator, type="payment_intent.created", data_object={"id": intent.pk})
    return subscription.pk


@pytest.mark.django_db
def test_fast_representation_equals_the_declared_fields(operator):
    """`payment_intent_data` bypasses the serializer's fields; it must say exactly what they say."""
    from rest_framework import serializers

    fresh = payment_services.payment_intent_create(operator=operator, amount=700, currency="EUR", metadata={"a": 1})
    authorized = authorized_intent(operator)
    captured = payment_services.payment_intent_capture(intent=authorized_intent(operator), amount_to_capture=100)
    voided = payment_services.payment_intent_void(intent=authorized_intent(operator), reason="duplicate")
    for intent in (fresh, authorized, captured, voided):
        intent = PaymentIntent.objects.select_related("charge_session").get(pk=intent.pk)
        by_fields = serializers.ModelSerializer.to_representation(PaymentIntentSerializer(), intent)
        assert payment_intent_data(intent) == by_fields


@pytest.mark.django_db(transaction=True)  # autocommit, as in a worker: BEGIN and COMMIT are counted
class TestWebhookDeliveryAttempt:
    """One attempt of a webhook delivery against a real receiver, in two round trips and no BEGIN/COMMIT: the
    claim (the subscription's row lock and the claim, two statements sent at once: one implicit transaction),
    the POST with no transaction open, and the success (the lock again, then one statement for the attempt,
    the delivery, the failing streak and the slot handed on). It was 15 statements in two transactions."""

    def _due_delivery(self, operator, url, monkeypatch, *, n=1):
        from django.db import transaction

        from webhooks import services
        from webhooks.models import WebhookDelivery, WebhookSubscription
        from webhooks.signing import secret_generate

        monkeypatch.setattr(services, "_enqueue", lambda *args, **kwargs: None)  # no task message: driven here
        subscription = WebhookSubscription.objects.create(
            operator=operator, url=url, event_types=["*"], secret=secret_generate()
        )
        with transaction.atomic():
            for i in range(n):
                services.event_emit(operator=operator, type="payment_intent.created", data_object={"id": f"pi_{i}"})
        return list(WebhookDelivery.objects.filter(subscription=subscription).order_by("created_at"))

    def test_a_successful_attempt(self, operator, receiver, monkeypatch, django_assert_max_num_queries):
        from webhooks.services import webhook_delivery_attempt

        (delivery,) = self._due_delivery(operator, receiver.url, monkeypatch)
        with CaptureQueriesContext(connection) as captured, django_assert_max_num_queries(2):
            assert webhook_delivery_attempt(delivery_id=delivery.pk) is not None
        assert not {"BEGIN", "COMMIT"} & {q["sql"] for q in captured}  # implicit transactions only
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempt_count, receiver.count()) == ("succeeded", 1, 1)
        assert delivery.attempts.get().response_status == 200

    def test_an_attempt_handing_its_slot_on(self, operator, receiver, monkeypatch, django_assert_max_num_queries):
        from webhooks.models import WebhookDelivery
        from webhooks.services import webhook_delivery_attempt

        first, waiting = self._due_delivery(operator, receiver.url, monkeypatch, n=2)
        WebhookDelivery.objects.filter(pk=waiting.pk).update(enqueued_at=None)  # given back earlier
        with django_assert_max_num_queries(2):
            webhook_delivery_attempt(delivery_id=first.pk)
        waiting.refresh_from_db()
        assert waiting.enqueued_at is not None and waiting.status == "pending"
