from celery import shared_task

from . import services
from .models import StationMapping


@shared_task
def mapping_connectivity_test(mapping_id: str) -> str | None:
    """Behind POST /mappings/{id}/test: ping the station through its adapter and record the result."""
    mapping = StationMapping.objects.live().filter(pk=mapping_id).first()
    if mapping is None:  # deleted meanwhile
        return None
    return services.mapping_connectivity_test_run(mapping=mapping).connectivity_test_status
