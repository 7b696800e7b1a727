"""The beat schedule reaches Celery, and every entry names a task that exists."""

from evpay.beat import BEAT_SCHEDULE


def test_beat_schedule_is_celerys_and_every_task_is_registered():
    from evpay.celery import app

    app.loader.import_default_modules()  # what a worker or beat does at start: autodiscover tasks
    assert app.conf.beat_schedule == BEAT_SCHEDULE
    assert "payments-expire-authorizations" in app.conf.beat_schedule
    missing = [entry["task"] for entry in BEAT_SCHEDULE.values() if entry["task"] not in app.tasks]
    assert missing == []
