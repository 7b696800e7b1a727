"""PreparedQuery: a queryset compiled once gives the instances the ORM gives, for any values."""

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from evpay.core.queries import PreparedQuery
from payments.models import PaymentIntent
from payments.services import payment_intent_authorize, payment_intent_create

BY_OPERATOR = PreparedQuery(lambda op, pk: PaymentIntent.objects.filter(operator_id=op, pk=pk), "op", "pk")


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in PaymentIntent._meta.concrete_fields}


@pytest.mark.django_db
def test_the_same_instance_as_the_orm_for_any_values(operator, other_operator):
    plain = payment_intent_create(operator=operator, amount=700, currency="EUR", metadata={"a": "b"})
    authorized = payment_intent_authorize(
        intent=payment_intent_create(operator=operator, amount=900, currency="EUR"), token="tok_visa"
    )
    for intent in (plain, authorized):
        found = BY_OPERATOR.first(op=operator.pk, pk=intent.pk)
        assert type(found) is PaymentIntent and not found._state.adding and found._state.db == "default"
        assert _fields(found) == _fields(PaymentIntent.objects.get(pk=intent.pk))  # JSON, times, enums converted
    assert BY_OPERATOR.first(op=other_operator.pk, pk=plain.pk) is None  # another operator's: not found
    assert BY_OPERATOR.first(op=operator.pk, pk="pi_missing") is None


@pytest.mark.django_db
def test_compiled_once_and_one_statement_per_call(operator):
    intent = payment_intent_create(operator=operator, amount=700, currency="EUR")
    query = PreparedQuery(lambda op, pk: PaymentIntent.objects.filter(operator_id=op, pk=pk), "op", "pk")
    built = []
    original = query.build
    query.build = lambda *args: built.append(args) or original(*args)
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            assert query.first(op=operator.pk, pk=intent.pk).pk == intent.pk
    assert len(built) == 1 and len(captured.captured_queries) == 3


@pytest.mark.django_db(transaction=True)
def test_for_update_outside_a_transaction_is_refused_as_by_the_orm(operator):
    intent = payment_intent_create(operator=operator, amount=700, currency="EUR")
    locked = PreparedQuery(lambda pk: PaymentIntent.objects.select_for_update().filter(pk=pk), "pk")
    with transaction.atomic():
        assert locked.first(pk=intent.pk).pk == intent.pk
    with pytest.raises(TransactionManagementError):
        locked.first(pk=intent.pk)


def test_only_plain_querysets():
    with pytest.raises(ValueError):
        PreparedQuery(lambda pk: PaymentIntent.objects.select_related("operator").filter(pk=pk), "pk")._compile(
            connection
        )
