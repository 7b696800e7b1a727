"""Faults against a deployment of our own: its own redis-server (broker and cache) and PostgreSQL cluster, gunicorn,
a Celery worker and beat. Redis stopped: writes still answer 201 and their events are delivered once it is back.
PostgreSQL restarted: 503 service_unavailable meanwhile, then recovery without restarting gunicorn. A worker
SIGKILLed in the middle of deliveries: every delivery is still made."""

import re
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import ROOT, wait_for
from tests.stack_support import Gunicorn, PostgresCluster, RedisServer, Worker, manage, project_env
from tests.webhook_receiver import Receiver, Reply

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


class Stack:
    def __init__(self, tmp):
        self.tmp = tmp
        self.redis = RedisServer(tmp)
        self.pg = PostgresCluster()
        self.redis.start()
        self.pg.start()
        self.pg.create_database()
        self.env = project_env(
            DATABASE_URL=self.pg.url(),
            CELERY_BROKER_URL=f"{self.redis.url}/0",
            CACHE_URL=f"rediscache://127.0.0.1:{self.redis.port}/1",
            WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1,1,1,1,1,1",
            WEBHOOK_TIMEOUT=3,
            WEBHOOK_REQUEUE_AFTER=5,
            CELERY_BEAT_SCHEDULE_FILENAME=tmp / "beat-schedule",
        )
        manage(self.env, "migrate", "-v", "0")
        operator_id = manage(self.env, "create_operator", "Fault Operator").strip().splitlines()[-1]
        self.key = manage(self.env, "create_api_key", "--operator", operator_id, "--scopes", "*").strip().split()[-1]
        self.web = Gunicorn(self.env, tmp / "gunicorn.log")
        self.worker = Worker(self.env, tmp / "worker.log", name="faults")
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evpay", "beat", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=self.env,
            stdout=(tmp / "beat.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.web.start()
        self.worker.start()

    def supervise(self) -> None:
        """What Compose's restart policy or Kubernetes does: a worker that exited is started again. Celery's
        worker may stop on a broker connection lost mid-ack ("Unrecoverable error"), which is a process exit to
        supervise, not a lost delivery: the database still holds every one."""
        if self.worker.proc.poll() is not None:
            self.worker.start()

    def api(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.web.url + path, headers={"X-API-Key": self.key}, **kwargs)

    def subscribe(self, receiver) -> str:
        response = self.api("POST", "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["*"]})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def create_intents(self, n: int) -> list[requests.Response]:
        return [self.api("POST", "/v1/payment-intents", json={"amount": 100 + i, "currency": "EUR"}) for i in range(n)]

    def close(self):
        self.worker.stop()
        self.beat.terminate()
        self.beat.wait(timeout=20)
        self.web.stop()
        self.redis.stop()
        self.pg.remove()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("faults"))
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def receiver(stack):
    """A receiver subscribed to every event, unsubscribed afterwards."""
    stack.supervise()
    with Receiver() as receiver:
        subscription_id = stack.subscribe(receiver)
        yield receiver
        stack.api("DELETE", f"/api/v1/webhooks/{subscription_id}")


def delivered_ids(receiver) -> set[str]:
    return {r.headers["webhook-id"] for r in receiver.received}


def test_redis_down_writes_still_201_and_events_follow_when_it_returns(stack, receiver):
    assert all(r.status_code == 201 for r in stack.create_intents(2))
    stack.supervise()
    wait_for(lambda: len(receiver.received) >= 2, timeout=60, message="deliveries before the fault")
    before = delivered_ids(receiver)

    stack.redis.stop()
    responses = stack.create_intents(10)
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses if r.status_code != 201]
    assert stack.api("GET", "/v1/payment-intents").status_code == 200
    assert requests.get(f"{stack.web.url}/health/ready", timeout=10).status_code == 503

    stack.redis.start()
    wait_for(
        lambda: stack.supervise() or len(delivered_ids(receiver) - before) >= 10,
        timeout=120,
        interval=0.5,
        message="the events written while Redis was down",
    )


def test_postgres_restart_is_503_then_recovers_without_restarting_gunicorn(stack, receiver):
    stack.pg.stop()
    down = stack.api("POST", "/v1/payment-intents", json={"amount": 100, "currency": "EUR"})
    assert down.status_code == 503, down.text
    assert down.headers["Content-Type"].startswith("application/problem+json")
    assert down.json()["code"] == "service_unavailable" and int(down.headers["Retry-After"]) > 0
    assert stack.api("GET", "/v1/payment-intents").status_code == 503
    assert requests.get(f"{stack.web.url}/health/ready", timeout=10).status_code == 503

    gunicorn_pid = stack.web.proc.pid
    stack.pg.start()

    def recovered():
        response = stack.api("POST", "/v1/payment-intents", json={"amount": 101, "currency": "EUR"})
        assert response.status_code in (201, 503), response.text
        return response.status_code == 201

    wait_for(recovered, timeout=60, interval=0.5, message="the API to answer again")
    assert stack.web.proc.pid == gunicorn_pid and stack.web.proc.poll() is None
    statuses = [r.status_code for r in stack.create_intents(5)]
    assert statuses == [201] * 5
    # The worker found its way back too: the events are delivered.
    wait_for(
        lambda: stack.supervise() or len(receiver.received) >= 6,
        timeout=120,
        interval=0.5,
        message="deliveries after restart",
    )


def test_a_worker_sigkilled_mid_delivery_loses_nothing(stack, receiver):
    receiver.reply(*[Reply(delay=1.0) for _ in range(6)])  # slow at first: attempts are under way
    responses = stack.create_intents(12)
    assert all(r.status_code == 201 for r in responses)
    intent_ids = {r.json()["id"] for r in responses}
    wait_for(lambda: len(receiver.received) >= 1, timeout=60, message="the first delivery to start")
    stack.worker.kill()
    time.sleep(0.5)
    stack.worker.start()

    def objects_delivered():
        return {
            re.search(rb'"id":"(pi_[^"]+)"', r.body).group(1).decode()
            for r in list(receiver.received)
            if b"payment_intent.created" in r.body
        }

    wait_for(
        lambda: stack.supervise() or intent_ids <= objects_delivered(),
        timeout=180,
        interval=0.5,
        message="every delivery after the worker was killed",
    )


def test_through_gunicorn_a_chunked_body_is_read_and_hostile_json_refused(stack):
    """Not a fault, but only a real server sends a chunked body the way clients do."""
    chunks = iter([b'{"amount": 150,', b' "currency": "EUR"}'])
    headers = {"X-API-Key": stack.key, "Content-Type": "application/json"}
    response = requests.post(f"{stack.web.url}/v1/payment-intents", data=chunks, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 150
    too_big = iter([b'{"description": "', b"x" * (70 * 1024), b'"}'])
    response = requests.post(f"{stack.web.url}/v1/payment-intents", data=too_big, headers=headers, timeout=30)
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    deep = b"[" * 5000 + b"]" * 5000
    response = requests.post(f"{stack.web.url}/v1/auth/token", data=deep, headers=headers, timeout=30)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert "Traceback" not in (stack.tmp / "gunicorn.log").read_text()
