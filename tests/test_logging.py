"""Structured logs: every line carries request_id and operator_id; JSON lines under LOG_FORMAT=json."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings


@pytest.fixture
def json_log():
    """Route evpay's loggers through the configured JSON formatter and context filter into a buffer."""
    stream = io.StringIO()
    config = json.loads(json.dumps(settings.LOGGING, default=str))
    config["handlers"] = {
        "buffer": {"class": "logging.StreamHandler", "stream": stream, "formatter": "json", "filters": ["context"]}
    }
    config["root"] = {"handlers": ["buffer"], "level": "INFO"}
    config["loggers"] = {}
    logging.config.dictConfig(config)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
def test_request_and_event_lines_carry_request_operator_and_object_ids(client, operator, json_log):
    response = client.post(
        "/v1/payment-intents", {"amount": 100, "currency": "EUR"}, format="json", HTTP_X_REQUEST_ID="req-abc-1"
    )
    intent_id = response.json()["id"]
    lines = json_log()
    access = next(line for line in lines if line["logger"] == "evpay.access")
    assert access["request_id"] == "req-abc-1"
    assert access["operator_id"] == operator.id
    assert access["status"] == 201 and access["method"] == "POST" and "duration_ms" in access
    event = next(line for line in lines if line.get("event_type") == "payment_intent.created")
    assert event["object_id"] == intent_id
    assert event["request_id"] == "req-abc-1" and event["operator_id"] == operator.id
    assert {"time", "level", "logger", "message"} <= set(event)


def test_celery_tasks_log_with_the_request_id_that_enqueued_them():
    from evpay import celery as evpay_celery
    from evpay.logging import bind_context, operator_id_var, request_id_var

    bind_context(request_id="req-from-web", operator_id="op_1")
    headers: dict = {}
    evpay_celery._propagate_request_id(headers=headers)
    assert headers["request_id"] == "req-from-web"

    bind_context(request_id=None, operator_id=None)

    class Task:  # what Celery hands the prerun signal: the task, whose request carries the message headers
        class request:
            id = "task-1"
            request_id = "req-from-web"

    evpay_celery._bind_task_context(task=Task)
    assert request_id_var.get() == "req-from-web" and operator_id_var.get() is None
    evpay_celery._clear_task_context()
    assert request_id_var.get() is None
