import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_process_shutdown,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evpay.settings.local")

app = Celery("evpay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _propagate_request_id(headers=None, **_):
    """Carry the request id of the web request that enqueued a task into the task's logs."""
    from evpay.logging import request_id_var

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get()


@task_prerun.connect
def _bind_task_context(task=None, **_):
    from evpay.logging import bind_context

    request_id = getattr(task.request, "request_id", None) if task else None
    bind_context(request_id=request_id or (task.request.id if task else None), operator_id=None)


@task_postrun.connect
def _clear_task_context(**_):
    from evpay.logging import bind_context

    bind_context(request_id=None, operator_id=None)


@worker_process_shutdown.connect
def _drop_process_metrics(pid=None, **_):
    from evpay.prometheus import mark_process_dead

    mark_process_dead(pid or os.getpid())


@worker_ready.connect
def _serve_worker_metrics(**_):
    """Where workers share no metrics directory with web (Kubernetes), each serves its own (README, Monitor)."""
    port = os.environ.get("CELERY_WORKER_METRICS_PORT")
    if port:
        from evpay.metrics import serve_process_metrics

        serve_process_metrics(int(port))


@task_success.connect
def _count_task_success(sender=None, **_):
    from evpay.metrics import celery_task_finished

    celery_task_finished(task=sender, outcome="succeeded")


@task_failure.connect
def _count_task_failure(sender=None, **_):
    from evpay.metrics import celery_task_finished

    celery_task_finished(task=sender, outcome="failed")


@task_retry.connect
def _count_task_retry(sender=None, **_):
    from evpay.metrics import celery_task_finished

    celery_task_finished(task=sender, outcome="retried")
