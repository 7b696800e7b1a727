"""evpay.api.serializers.Serializer: its cheap copies of the declared fields validate as DRF's deep copies do,
and no state is shared between two instances (each field is bound to its own serializer and context)."""

import copy

import pytest
from rest_framework import serializers

from evpay.api.serializers import _COPIED_SHALLOW, Serializer
from payments.serializers import PaymentIntentAuthorizeSerializer, PaymentIntentCreateSerializer
from terminals.serializers import TerminalHealthEventCreateSerializer

ATTRIBUTES = (
    "required", "read_only", "write_only", "allow_null", "default", "source", "label", "help_text", "initial",
    "max_length", "min_length", "max_value", "min_value", "allow_blank", "choices", "max_digits", "decimal_places",
)  # fmt: skip


def _plain_serializers() -> list[type[Serializer]]:
    found, todo = [], [Serializer]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _described(field) -> dict:
    described = {name: getattr(field, name, None) for name in ATTRIBUTES}
    described["type"] = type(field)
    described["validators"] = [(type(v), getattr(v, "limit_value", None)) for v in field.validators]
    described["error_messages"] = field.error_messages
    return described


def test_every_plain_serializer_gets_the_fields_drf_would_give():
    classes = _plain_serializers()
    assert PaymentIntentCreateSerializer in classes and TerminalHealthEventCreateSerializer in classes
    shallow = 0
    for cls in classes:
        ours, drfs = cls().fields, copy.deepcopy(cls._declared_fields)
        assert list(ours) == list(drfs), cls
        for name, field in ours.items():
            reference = drfs[name]
            reference.bind(name, cls())
            assert _described(field) == _described(reference), (cls, name)
            shallow += type(field) in _COPIED_SHALLOW
    assert shallow > 50  # the cheap copy is the common case, not an exception


def test_no_field_is_shared_between_two_instances_and_the_declared_ones_stay_unbound():
    body = {"type": "heartbeat", "occurred_at": "2026-01-01T00:00:00Z", "metrics": {"signal_strength_dbm": -60}}
    first = TerminalHealthEventCreateSerializer(data=body, context={"who": "first"})
    second = TerminalHealthEventCreateSerializer(data={"type": "nonsense"}, context={"who": "second"})
    assert first.is_valid(), first.errors
    assert not second.is_valid() and set(second.errors) == {"type", "occurred_at"}
    for name in first.fields:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first and second.fields[name].parent is second
        assert first.fields[name].context == {"who": "first"} and second.fields[name].context == {"who": "second"}
    nested = first.fields["metrics"].fields["signal_strength_dbm"]
    assert nested.context == {"who": "first"}  # nested serializers: DRF's deep copy, bound to this instance
    for field in TerminalHealthEventCreateSerializer._declared_fields.values():
        assert field.parent is None and field.field_name is None
    assert first.validated_data["metrics"] == {"signal_strength_dbm": -60}


@pytest.mark.parametrize(
    ("serializer", "body", "errors"),
    [
        (PaymentIntentCreateSerializer, {"amount": "5", "currency": "eur"}, {"amount", "currency"}),
        (PaymentIntentCreateSerializer, {"amount": 5, "currency": "EUR", "metadata": []}, {"metadata"}),
        (PaymentIntentAuthorizeSerializer, {"payment_method": {"type": "cash"}}, {"payment_method"}),
        (TerminalHealthEventCreateSerializer, {"type": "heartbeat", "occurred_at": "x" * 80}, {"occurred_at"}),
    ],
)
def test_refusals_are_drfs(serializer, body, errors):
    class WithDeepCopies(serializer):
        def get_fields(self):
            return serializers.Serializer.get_fields(self)

    ours, drfs = serializer(data=body, context={}), WithDeepCopies(data=body, context={})
    assert not ours.is_valid() and not drfs.is_valid()
    assert set(ours.errors) == errors and ours.errors == drfs.errors


@pytest.mark.django_db
def test_an_object_field_shares_its_queryset_but_never_fills_it(operator, other_operator):
    from types import SimpleNamespace

    from tests.charging_support import make_terminal

    mine, theirs = make_terminal(operator), make_terminal(other_operator)
    request = SimpleNamespace(user=SimpleNamespace(operator=operator))
    declared = PaymentIntentCreateSerializer._declared_fields["terminal_id"].queryset
    for terminal_id, valid in ((mine.pk, True), (theirs.pk, False), (mine.pk, True)):
        body = {"amount": 500, "currency": "EUR", "terminal_id": terminal_id}
        serializer = PaymentIntentCreateSerializer(data=body, context={"request": request})
        assert serializer.fields["terminal_id"].queryset is declared  # shallow: shared
        assert serializer.is_valid() is valid, serializer.errors
        if valid:
            assert serializer.validated_data["terminal_id"] == mine
        else:
            assert set(serializer.errors) == {"terminal_id"}
    assert declared._result_cache is None  # only ever filtered: the shared queryset holds no rows
