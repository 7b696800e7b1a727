"""The ground every app stands on (evpay/core) and the outbox's guard against unknown event types."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from evpay.core.clock import MAX_CLOCK_SKEW, not_in_future
from evpay.core.errors import InvalidState, ValidationFailed
from evpay.core.models import IdempotencyKey
from evpay.core.pruning import prune_in_batches
from evpay.core.transitions import transition_allowed, transition_check
from evpay.core.updates import model_update
from webhooks.models import Event
from webhooks.services import event_emit

TABLE = {
    "open": (frozenset({"new"}), "opened"),
    "touch": (frozenset({"new", "opened"}), None),
}


def test_transition_check_gives_the_target_or_refuses_with_the_callers_words():
    assert transition_check(TABLE, action="open", status="new", refusal=str) == "opened"
    assert transition_check(TABLE, action="touch", status="opened", refusal=str) == "opened"  # keeps its status
    assert transition_allowed(TABLE, action="open", status="new")
    assert not transition_allowed(TABLE, action="open", status="opened")
    with pytest.raises(InvalidState) as refused:
        transition_check(TABLE, action="open", status="opened", refusal=lambda allowed: f"only from {sorted(allowed)}")
    assert refused.value.detail == "only from ['new']"


def test_not_in_future_allows_the_skew_and_refuses_beyond_it():
    now = timezone.now()
    not_in_future(now + MAX_CLOCK_SKEW, field="measured_at", now=now)
    with pytest.raises(ValidationFailed) as refused:
        not_in_future(now + MAX_CLOCK_SKEW + timedelta(seconds=1), field="measured_at", now=now)
    assert "measured_at" in refused.value.errors


def test_model_update_sets_only_given_changed_fields():
    key = IdempotencyKey(key="k", fingerprint="f", response_status=201)
    changed = model_update(
        instance=key, fields=("key", "fingerprint", "response_status"), data={"key": "k", "fingerprint": "g"}
    )
    assert changed == ["fingerprint"] and (key.key, key.fingerprint, key.response_status) == ("k", "g", 201)
    assert model_update(instance=key, fields=("fingerprint",), data={"fingerprint": None}) == []
    assert key.fingerprint == "g"


@pytest.mark.django_db
def test_prune_in_batches_deletes_every_matching_row_and_counts_them(operator):
    old = timezone.now() - timedelta(days=3)
    for i in range(7):
        IdempotencyKey.objects.create(operator=operator, key=f"k{i}", fingerprint="f")
    IdempotencyKey.objects.filter(key__in=["k0", "k1", "k2", "k3", "k4"]).update(created_at=old)
    assert (
        prune_in_batches(IdempotencyKey.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)), batch=2) == 5
    )
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["k5", "k6"]


@pytest.mark.django_db
def test_event_emit_refuses_a_type_not_in_event_types(operator):
    with pytest.raises(ValueError, match="charge.strated"), transaction.atomic():
        event_emit(operator=operator, type="charge.strated", data_object={"id": "chs_x"})
    assert not Event.objects.exists()
    with transaction.atomic():
        event_emit(operator=operator, type="charge.started", data_object={"id": "chs_x"})
    assert Event.objects.get().type == "charge.started"
