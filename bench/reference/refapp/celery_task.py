"""The reference for webhook delivery: a bare Celery task that makes one HTTP POST, with the worker settings evpay
uses (acks_late, prefetch 1, JSON) and a reused HTTP session per process, as evpay's transport has."""

import os

import requests
from celery import Celery

app = Celery("refapp", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12"), set_as_current=False)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue="bench_reference",
    worker_hijack_root_logger=False,
)
_session = requests.Session()


@app.task(name="refapp.post")
def post(url: str, body: str) -> None:
    _session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10).raise_for_status()
