import logging

from celery import shared_task

from . import services
from .models import AdapterConfig, StationMapping
from .selectors import adapter_configs_due_for_poll

logger = logging.getLogger(__name__)


@shared_task
def mapping_connectivity_test(mapping_id: str) -> str | None:
    """Behind POST /mappings/{id}/test: ping the station through its adapter and record the result."""
    mapping = StationMapping.objects.live().filter(pk=mapping_id).first()
    if mapping is None:  # deleted meanwhile
        return None
    return services.mapping_connectivity_test_run(mapping=mapping).connectivity_test_status


@shared_task
def mapping_statuses_fetch(mapping_id: str) -> int:
    """A new or changed mapping: its connectors' statuses, fetched at once."""
    mapping = StationMapping.objects.live().filter(pk=mapping_id).first()
    return services.mapping_statuses_fetch(mapping=mapping) if mapping else 0


@shared_task
def poll_connector_statuses() -> int:
    """Beat (every 10 s): enqueue a poll of each enabled adapter whose poll_interval_s has passed."""
    enqueued = 0
    for config in adapter_configs_due_for_poll():
        if services.adapter_poll_claim(config=config):
            poll_adapter.delay(config.pk)
            enqueued += 1
    return enqueued


@shared_task
def poll_adapter(config_id: int) -> int:
    config = AdapterConfig.objects.filter(pk=config_id, enabled=True).first()
    return services.adapter_poll(config=config) if config else 0


@shared_task
def probe_adapter_health() -> int:
    """Beat (every minute): one probe task per configured adapter, so a slow CPMS delays only its own."""
    config_ids = list(AdapterConfig.objects.values_list("pk", flat=True))
    for config_id in config_ids:
        probe_adapter.delay(config_id)
    return len(config_ids)


@shared_task
def probe_adapter(config_id: int) -> str | None:
    config = AdapterConfig.objects.filter(pk=config_id).first()
    return services.adapter_health_probe(config=config) if config else None


@shared_task
def prune_adapter_calls() -> int:
    return services.adapter_calls_prune()
