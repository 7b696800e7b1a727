"""Deferred statements (evpay.core.queries.execute_deferred, evpay.core.backends.postgresql): inside a transaction
they travel with the next statement or the COMMIT, in one message, in the order they were made; a rollback drops
them; their errors fail the transaction; outside a transaction they run at once."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import psycopg.types.json
import pytest
from django.db import DataError, IntegrityError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from evpay.core.queries import execute_deferred, row_insert
from payments.models import PaymentIntent

pytestmark = pytest.mark.django_db(transaction=True)


def _intent(operator, **fields) -> PaymentIntent:
    return PaymentIntent(operator=operator, amount=fields.pop("amount", 500), currency="EUR", **fields)


def _committed(intent_id: str) -> bool:
    """Seen from another connection: committed, not only written in ours."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                         dbname=settings["NAME"], autocommit=True) as other:  # fmt: skip
        return other.execute("SELECT 1 FROM payments_paymentintent WHERE id = %s", [intent_id]).fetchone() is not None


def test_a_deferred_statement_travels_with_the_next_one_and_is_seen_by_it(operator):
    intent = _intent(operator)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        row_insert(intent)
        assert captured.captured_queries == []  # nothing sent yet
        amount = PaymentIntent.objects.values_list("amount", flat=True).get(pk=intent.pk)
        assert len(captured.captured_queries) == 1  # one message: BEGIN, the INSERT, the SELECT that sees it
        assert captured.captured_queries[0]["sql"].startswith('BEGIN;\nINSERT INTO "payments_paymentintent"')
    assert amount == 500 and _committed(intent.pk)


def test_deferred_statements_travel_with_the_commit_in_order(operator):
    first, second = _intent(operator), _intent(operator, amount=700)
    results = []
    with CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            row_insert(first)
            execute_deferred(
                "UPDATE payments_paymentintent SET amount = amount + 1 WHERE id = %s RETURNING amount",
                [first.pk],
                on_result=lambda cursor: results.append(cursor.fetchall()),
            )
            row_insert(second)
    messages = [q["sql"] for q in captured.captured_queries]  # the whole transaction, one round trip
    assert len(messages) == 1 and messages[0].startswith("BEGIN;") and messages[0].endswith("COMMIT"), messages
    assert results == [[(501,)]]  # run after the insert it followed, its rows handed to on_result
    assert _committed(first.pk) and _committed(second.pk)


def test_a_transaction_that_runs_nothing_sends_nothing(operator):
    with CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            pass
        with transaction.atomic():
            row_insert(_intent(operator))
            transaction.set_rollback(True)
    assert captured.captured_queries == []
    with transaction.atomic():
        assert PaymentIntent.objects.count() == 0  # BEGIN went with it: in a transaction, as the server says
        assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_rollback_drops_what_waits(operator):
    dropped, kept = _intent(operator), _intent(operator)
    with CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            row_insert(dropped)
            transaction.set_rollback(True)
    assert not any("INSERT" in q["sql"] for q in captured.captured_queries)
    with transaction.atomic():
        row_insert(kept)
        try:
            with transaction.atomic():  # a savepoint: its statements go ahead of its ROLLBACK TO, and are undone
                row_insert(dropped)
                raise RuntimeError
        except RuntimeError:
            pass
    assert _committed(kept.pk) and not _committed(dropped.pk)
    with transaction.atomic():
        row_insert(_intent(operator, id="pi_afterrollback"))
    assert _committed("pi_afterrollback")  # nothing of the rolled-back transaction was left waiting


def test_an_error_in_a_deferred_statement_fails_its_transaction(operator):
    existing = _intent(operator)
    row_insert(existing)  # autocommit: at once
    assert _committed(existing.pk)
    fresh = _intent(operator)
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(fresh)
        row_insert(_intent(operator, id=existing.pk))  # a duplicate id: raised by the COMMIT it travels with
    assert not _committed(fresh.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(_intent(operator, id=existing.pk))
        PaymentIntent.objects.filter(pk=fresh.pk).exists()  # the statement it travels with raises
    assert PaymentIntent.objects.filter(pk=existing.pk).count() == 1  # the connection is usable afterwards


def test_percent_signs_and_named_parameters(operator):
    seen = []
    with transaction.atomic():
        # No parameters: its % is literal, also once it shares a message with a statement that has some.
        execute_deferred("SELECT '100%'", None, on_result=lambda cursor: seen.append(cursor.fetchone()[0]))
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::text || '%%'", ["5"])
            assert cursor.fetchone() == ("5%",)
        execute_deferred("SELECT %s::int", [7], on_result=lambda cursor: seen.append(cursor.fetchone()[0]))
        with connection.cursor() as cursor:  # named placeholders: bound like the others, in the same message
            cursor.execute("SELECT %(n)s::int + 1", {"n": 1})
            assert cursor.fetchone() == (2,)
            cursor.execute("SELECT 1")  # no parameters, nothing waiting
            assert cursor.fetchone() == (1,)
    assert seen == ["100%", 7]


def test_a_server_side_cursor_sends_what_waits_first(operator):
    intents = [_intent(operator) for _ in range(3)]
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        for intent in intents:
            row_insert(intent)
        found = list(PaymentIntent.objects.filter(operator=operator).values_list("pk", flat=True).iterator(2))
    assert sorted(found) == sorted(i.pk for i in intents)  # the DECLARE ran after the inserts, in its own message
    assert captured.captured_queries[0]["sql"].count("INSERT INTO") == 3


def test_outside_a_transaction_it_runs_at_once(operator):
    intent = _intent(operator)
    with CaptureQueriesContext(connection) as captured:
        row_insert(intent)
    assert len(captured.captured_queries) == 1 and _committed(intent.pk)
    rows = []
    execute_deferred("SELECT %s::int", [3], on_result=lambda cursor: rows.append(cursor.fetchone()))
    assert rows == [(3,)]


def test_on_commit_hooks_from_a_result_that_came_with_the_commit(operator):
    ran = []

    def register(cursor):
        value = cursor.fetchone()[0]
        transaction.on_commit(lambda: ran.append((value, connection.in_atomic_block)))

    with transaction.atomic():
        execute_deferred("SELECT %s::int", [9], on_result=register)
        assert ran == []
    assert ran == [(9, False)]  # after the commit, not during it
    with transaction.atomic():
        execute_deferred("SELECT %s::int", [10], on_result=register)
        transaction.set_rollback(True)
    assert ran == [(9, False)]  # rolled back: neither run nor registered


def test_executemany_sends_what_waits_first(operator):
    intent = _intent(operator)
    with transaction.atomic():
        row_insert(intent)
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE payments_paymentintent SET amount = amount + %s WHERE id = %s", [(1, intent.pk), (2, intent.pk)]
            )
    assert PaymentIntent.objects.get(pk=intent.pk).amount == 503  # inserted first, then both updates


class TestBinding:
    """`DatabaseWrapper.bind`: what the driver's `mogrify` makes, with the statement's parsing cached whatever its
    length and one transformer per connection."""

    VALUES = [
        "it's", "50 % off", "", "ünïcødé €", "back\\slash", 0, -1, 2**40, 2**63 - 1, True, False, None, 1.5,
        datetime(2026, 12, 3, 15, 4, 5, 123456, tzinfo=UTC), date(2026, 12, 3), Decimal("12.34"),
        uuid.UUID(int=7), ["a", "b'c"], psycopg.types.json.Jsonb({"k": ["v", 1, None]}), b"\x00\x01'",
    ]  # fmt: skip

    def _mogrified(self, sql, params):
        connection.ensure_connection()
        return psycopg.ClientCursor(connection.connection).mogrify(sql, params)

    @pytest.mark.parametrize("value", VALUES, ids=repr)
    def test_each_value_binds_as_the_driver_binds_it(self, value):
        sql = "SELECT %s, 'a %% b'"
        assert connection.bind(sql, [value]) == self._mogrified(sql, [value])

    def test_a_long_statement_of_many_parameters_binds_as_the_driver_binds_it(self):
        # Over the driver's own cache limits (50 parameters, 4 kB), so parsed by `_parsed` alone.
        params = self.VALUES * 4
        sql = "SELECT " + ", ".join(["%s"] * len(params)) + " -- " + "x" * 5000
        assert connection.bind(sql, params) == self._mogrified(sql, params)
        assert connection.bind(sql, params) == self._mogrified(sql, params)  # from the cache

    def test_named_parameters_bind_as_the_driver_binds_them(self):
        sql, params = "SELECT %(a)s, %(b)s, %(a)s", {"a": "x'y", "b": 3}
        assert connection.bind(sql, params) == self._mogrified(sql, params)

    def test_a_wrong_number_of_parameters_is_refused(self):
        with pytest.raises(ProgrammingError, match="2 placeholders but 1 parameters"):
            connection.bind("SELECT %s, %s", ["one"])

    def test_a_nul_in_text_is_djangos_data_error_and_sends_nothing(self, operator):
        with pytest.raises(DataError):
            PaymentIntent.objects.filter(description="a\x00b").exists()
        assert PaymentIntent.objects.count() == 0  # the connection still works

    def test_a_new_connection_gets_a_transformer_of_its_own(self):
        connection.bind("SELECT %s", [1])
        first = connection._binder
        connection.close()
        connection.bind("SELECT %s", [1])
        assert connection._binder is not first and connection._binder.connection is connection.connection
