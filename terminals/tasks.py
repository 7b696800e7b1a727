from celery import shared_task

from .services import terminal_health_events_prune, terminals_errors_24h_refresh, terminals_mark_offline


@shared_task
def aggregate_health() -> dict:
    """Beat, every minute: silent terminals go offline; errors_24h drops errors older than 24 h."""
    return {"marked_offline": terminals_mark_offline(), "errors_24h_refreshed": terminals_errors_24h_refresh()}


@shared_task
def prune_health_events() -> int:
    """Beat: health events past TERMINAL_HEALTH_RETENTION_DAYS are deleted."""
    return terminal_health_events_prune()
