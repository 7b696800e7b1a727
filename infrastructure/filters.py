import django_filters

from evpay.api.filters import BaseFilterSet, StrictBooleanFilter

from .adapters.registry import adapter_types
from .models import Connector, OcpiStatus, StationMapping


def _adapter_type_choices():
    return [(name, name) for name in adapter_types()]


class StationMappingFilterSet(BaseFilterSet):
    adapter_type = django_filters.ChoiceFilter(choices=_adapter_type_choices)
    is_active = StrictBooleanFilter()
    station_id = django_filters.CharFilter()

    class Meta:
        model = StationMapping
        fields = ["adapter_type", "is_active", "station_id"]


class ConnectorFilterSet(BaseFilterSet):
    station_id = django_filters.CharFilter(field_name="mapping__station_id")
    status = django_filters.ChoiceFilter(choices=OcpiStatus.choices)
    adapter_type = django_filters.ChoiceFilter(field_name="mapping__adapter_type", choices=_adapter_type_choices)
    mapping_id = django_filters.CharFilter(field_name="mapping_id")

    class Meta:
        model = Connector
        fields = ["station_id", "status", "adapter_type", "mapping_id"]
