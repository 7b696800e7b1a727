"""The base of the API's plain (not model) serializers: request bodies and computed responses.

DRF gives every serializer instance a deep copy of the declared fields, and a field's deep copy re-creates it
from deep copies of its arguments (a choice field's choices, every time): for a request body of a few fields
that is a third of its validation. A field whose state is only what its arguments made is copied shallowly
here instead: `bind()` then sets what differs per instance (its name, its parent, hence its context) on the
copy, and the declared field itself is never bound. Anything else (nested serializers, lists and dicts with a
child bound to them, DRF's related fields) keeps DRF's deep copy. `OperatorObjectField` holds a queryset but only
ever filters it (a new queryset each time, the shared one never evaluated), so a shallow copy shares it safely.
"""

import copy

from rest_framework import fields, serializers

from evpay.api import fields as evpay_fields

_COPIED_SHALLOW = frozenset(
    {
        fields.BooleanField,
        fields.CharField,
        fields.ChoiceField,
        fields.DateTimeField,
        fields.DecimalField,
        fields.FloatField,
        fields.IntegerField,
        fields.JSONField,
        evpay_fields.AmountField,
        evpay_fields.CurrencyField,
        evpay_fields.MetadataField,
        evpay_fields.OperatorObjectField,
        evpay_fields.RequestTimeField,
    }
)


class Serializer(serializers.Serializer):
    def get_fields(self):
        return {
            name: copy.copy(field) if type(field) in _COPIED_SHALLOW else copy.deepcopy(field)
            for name, field in self._declared_fields.items()
        }
