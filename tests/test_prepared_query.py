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


@pytest.mark.django_db
def test_extra_select_columns_become_attributes_as_in_the_orm(operator):
    intent = payment_intent_create(operator=operator, amount=700, currency="EUR")
    build = lambda pk: PaymentIntent.objects.filter(pk=pk).extra(  # noqa: E731
        select={"doubled": '"amount" * 2', "greeting": "'hello'"}
    )
    found = PreparedQuery(build, "pk").first(pk=intent.pk)
    orm = build(intent.pk).get()
    assert (found.doubled, found.greeting) == (orm.doubled, orm.greeting) == (1400, "hello")
    assert _fields(found) == _fields(orm)


def test_only_plain_querysets():
    with pytest.raises(ValueError):
        PreparedQuery(lambda pk: PaymentIntent.objects.select_related("operator").filter(pk=pk), "pk")._compile(
            connection
        )


@pytest.mark.django_db
def test_row_insert_writes_what_save_writes(operator):
    from evpay.core.queries import row_insert

    plain = PaymentIntent(operator=operator, amount=700, currency="EUR", metadata={"k": [1, 2]}, description="d")
    row_insert(plain)
    assert not plain._state.adding
    orm = PaymentIntent(operator=operator, amount=700, currency="EUR", metadata={"k": [1, 2]}, description="d")
    orm.save(force_insert=True)
    differ = {"id", "created_at", "updated_at"}  # a new id, and the time each was made
    stored, saved = _fields(PaymentIntent.objects.get(pk=plain.pk)), _fields(PaymentIntent.objects.get(pk=orm.pk))
    assert {k: v for k, v in stored.items() if k not in differ} == {k: v for k, v in saved.items() if k not in differ}
    assert stored["updated_at"] is not None and stored["created_at"] is not None


@pytest.mark.django_db
def test_row_update_sets_only_the_fields_named(operator):
    from django.core.exceptions import ObjectDoesNotExist

    from evpay.core.queries import row_update

    intent = payment_intent_create(operator=operator, amount=700, currency="EUR")
    before = PaymentIntent.objects.get(pk=intent.pk)
    intent.description, intent.amount = "changed", 1  # amount is not named: not written
    row_update(intent, ["description", "updated_at"])
    after = PaymentIntent.objects.get(pk=intent.pk)
    assert (after.description, after.amount) == ("changed", 700)
    assert after.updated_at > before.updated_at  # auto_now, when named
    row_update(intent, ["description"])
    assert PaymentIntent.objects.get(pk=intent.pk).updated_at == after.updated_at  # not named: unchanged
    with pytest.raises(ValueError):
        row_update(intent, ["no_such_field"])
    # Deferred inside a transaction: the statement it travels with (here the next read) raises.
    row_update(PaymentIntent(id="pi_missing", operator=operator, amount=1, currency="EUR"), ["description"])
    with pytest.raises(ObjectDoesNotExist):
        PaymentIntent.objects.filter(pk=intent.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_row_update_of_a_missing_row_raises_at_once_in_autocommit(operator):
    from django.core.exceptions import ObjectDoesNotExist

    from evpay.core.queries import row_update

    with pytest.raises(ObjectDoesNotExist):
        row_update(PaymentIntent(id="pi_missing", operator=operator, amount=1, currency="EUR"), ["description"])


def _orm_values(instance, fields, add):
    from django.db import connection as proxy

    return [f.get_db_prep_save(f.pre_save(instance, add), proxy) for f in fields]


def _typed(values):
    return [(type(v), v if not hasattr(v, "obj") else (type(v.obj), v.obj)) for v in values]  # Jsonb wraps .obj


@pytest.mark.django_db
@pytest.mark.parametrize("add", [True, False])
def test_db_values_are_what_the_orm_sends_for_every_model_and_odd_values(operator, add):
    """db_values takes a shortcut for common fields and values: it must send exactly what the ORM's five steps
    send (types included: psycopg's Int8 and the like), and leave everything else to them."""
    import copy
    import datetime as dt
    import warnings
    from unittest import mock

    from django.apps import apps
    from django.utils import timezone

    from evpay.core.queries import db_values
    from evpay.crypto import EncryptedTextField, decrypt
    from payments.models import PaymentIntentStatus

    fixed = timezone.now()
    instances = [model() for model in apps.get_models() if model.__module__.split(".")[0] in _PROJECT_APPS]
    assert len(instances) > 15
    intent = payment_intent_create(operator=operator, amount=700, currency="EUR", metadata={"a": [1]})
    odd = PaymentIntent(
        operator_id="",  # an empty id: the foreign key's own rule
        terminal_id=None,
        amount="500",  # a str of digits for a number: the ORM converts it
        amount_authorized=True,  # a bool for a number
        currency=PaymentIntentStatus.CAPTURED,  # a TextChoices member (a str)
        status=PaymentIntentStatus.CAPTURED,
        capture_before=dt.datetime(2026, 1, 1, 12, 0),  # naive: the ORM warns and keeps it
        authorized_at=dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC),
        description=None,
        metadata={"nested": {"x": 1}},
    )
    for instance in [*instances, intent, odd]:
        fields = type(instance)._meta.concrete_fields
        with mock.patch("django.utils.timezone.now", return_value=fixed), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the naive datetime's
            ours = db_values(copy.copy(instance), fields, add=add)
            orm = _orm_values(copy.copy(instance), fields, add)
        for field, mine, theirs in zip(fields, ours, orm, strict=True):
            if isinstance(field, EncryptedTextField):  # the ORM's way, and each encryption is new
                assert type(mine) is type(theirs)
                if mine is not None:
                    assert decrypt(mine, purpose=field.purpose) == decrypt(theirs, purpose=field.purpose)
            else:
                assert _typed([mine]) == _typed([theirs]), (type(instance).__name__, field.name)


_PROJECT_APPS = {"evpay", "payments", "charging", "terminals", "webhooks", "infrastructure"}


@pytest.mark.django_db
def test_new_row_values_are_those_of_the_instance_it_stands_for(operator):
    """new_row_values(fields, values) == db_values(Model(**values), fields): defaults filled in as Model.__init__
    fills them, ids excepted (each call draws a new one)."""
    from unittest import mock

    from django.utils import timezone

    from evpay.core.queries import db_values, new_row_values
    from webhooks.models import WebhookDelivery, WebhookPayload

    fixed = timezone.now()
    cases = [
        (WebhookPayload, {"event_id": "evt_x", "body": '{"a":1}', "created_at": fixed}),
        (WebhookDelivery, {"operator_id": operator.pk, "event_id": "evt_x", "event_type": "payment_intent.created"}),
        (PaymentIntent, {"operator_id": operator.pk, "amount": 700, "currency": "EUR", "metadata": {"k": [1]}}),
    ]
    for model, values in cases:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        with mock.patch("django.utils.timezone.now", return_value=fixed):
            ours, orm = new_row_values(fields, values), db_values(model(**values), fields)
        for field, mine, theirs in zip(fields, ours, orm, strict=True):
            if field.default is timezone.now:  # a default drawn at each call (mock cannot reach the reference)
                assert type(mine) is type(theirs) and abs(mine - theirs).total_seconds() < 5
            else:
                assert _typed([mine]) == _typed([theirs]), (model.__name__, field.name)
