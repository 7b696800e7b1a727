"""Shared fixtures: operators, API clients by scope, a real Celery worker on the test database."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from evpay.core.services import api_key_create, operator_create, operator_user_create
from tests.webhook_receiver import receiver  # noqa: F401 - fixture: a real HTTP webhook receiver

ROOT = Path(__file__).resolve().parent.parent

# Fixtures of one app's tests that several of its test files share.
pytest_plugins = ["tests.infrastructure_support"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (failed authentication above all) live in the cache: every test starts from none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def auth_failure_window_held(monkeypatch):
    """The failed-authentication window held at one bucket for the test: counts start again at a window's edge,
    and a test that counts failures must not straddle one (a 300 s window met one about once in 100 runs)."""
    from evpay.api import throttling

    bucket = int(throttling.time.time()) // throttling.settings.AUTH_FAILURE_WINDOW
    monkeypatch.setattr(throttling, "_window", lambda: (bucket, throttling.settings.AUTH_FAILURE_WINDOW))


@pytest.fixture
def shared_cache():
    """Redis as the cache, as in production (the suite's default, locmem, is per process: nothing is cached in
    it that another process could change). A key prefix of its own, so that parallel runs never meet."""
    from django.test.utils import override_settings

    location = os.environ.get("TEST_CACHE_REDIS", "redis://127.0.0.1:6379/13")
    config = {"BACKEND": "evpay.core.cache.RedisCache", "LOCATION": location, "KEY_PREFIX": uuid.uuid4().hex}
    with override_settings(CACHES={"default": config}):
        yield


@pytest.fixture
def operator(db):
    return operator_create(name="Operator A")


@pytest.fixture
def other_operator(db):
    return operator_create(name="Operator B")


@pytest.fixture
def make_client(db):
    """make_client(operator, scopes="*") -> an APIClient authenticated with a fresh API key."""

    def make(operator, scopes="*"):
        scope_list = scopes.split(",") if isinstance(scopes, str) else list(scopes)
        _, raw = api_key_create(operator=operator, scopes=scope_list)
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        client.raw_key = raw
        return client

    return make


@pytest.fixture
def client(make_client, operator):
    """An API client of `operator` with every scope."""
    return make_client(operator)


@pytest.fixture
def other_client(make_client, other_operator):
    return make_client(other_operator)


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def admin_user(operator):
    return operator_user_create(operator=operator, username="alice", password="s3cret-pass!", role="admin")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(**extra) -> dict:
    """Environment for a process (worker, server) that must share this test run's database and broker."""
    from django.conf import settings

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="evpay.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="session")
def metrics_dir(tmp_path_factory):
    """prometheus_client multiprocess directory shared by the test worker and any web process a test starts."""
    return tmp_path_factory.mktemp("prometheus")


_worker_running = False


@pytest.fixture(autouse=True)
def _worker_quiet_before_flush(request):
    """A transactional test's tables are truncated when it ends; a task it enqueued (a new mapping's status fetch,
    a webhook delivery) that the session's worker runs meanwhile would deadlock with that TRUNCATE. So once the
    worker runs, such a test first drops its queued tasks and waits for the worker to finish the running ones."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before this fixture: torn down (flushed) after it
    yield
    if not _worker_running:
        return
    from evpay.celery import app

    app.control.purge()
    deadline = time.monotonic() + 30
    inspect = app.control.inspect(timeout=1, limit=1)
    revoked: set[str] = set()
    while time.monotonic() < deadline:
        active, reserved, scheduled = inspect.active(), inspect.reserved(), inspect.scheduled()
        # None: the worker did not answer within the timeout (a loaded machine), which says nothing about its
        # tasks; only an answer that lists none is quiet.
        if active is not None and reserved is not None and scheduled is not None:
            # A task held for its countdown (a webhook retry, a settlement retry) is not removed by the purge and
            # would run into the next test's flush: revoke it, and it is discarded when its time comes.
            waiting = {entry["request"]["id"] for replies in scheduled.values() for entry in replies} - revoked
            if waiting:
                app.control.revoke(list(waiting))
                revoked |= waiting
            if not waiting and not any(tasks for replies in (active, reserved) for tasks in replies.values()):
                return
        time.sleep(0.05)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, metrics_dir, live_server):
    """A real `celery -A evpay worker` (prefork) on the test database and the test broker.

    Tests that use it must be `django_db(transaction=True)` so the worker sees their commits. Its PUBLIC_BASE_URL is
    the test live server, so what it gives a CPMS to call back (OCPI response_url) reaches this test run."""
    from evpay.celery import app

    with django_db_blocker.unblock():
        env = worker_env(PROMETHEUS_MULTIPROC_DIR=metrics_dir, PUBLIC_BASE_URL=live_server.url)
    app.control.purge()
    log = open(ROOT / "var" / "test-worker.log", "w") if (ROOT / "var").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evpay",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "3",  # more than WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION: one slow receiver cannot hold every process
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited during start-up")
        try:
            if app.control.ping(timeout=0.5):
                break
        except Exception:  # broker not ready yet
            pass
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("celery worker did not answer a ping within 60 s")
    global _worker_running
    _worker_running = True
    yield proc
    _worker_running = False
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_for(predicate, timeout=20.0, interval=0.1, message="condition"):
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def parallel():
    """parallel(fn, n): run fn(i) in n real threads (each with its own database connection) at once."""
    import threading

    from django.db import connections

    def run(fn, n):
        barrier = threading.Barrier(n)
        results: list = [None] * n

        def target(i):
            try:
                barrier.wait()
                results[i] = fn(i)
            except Exception as exc:  # surfaced to the test through results
                results[i] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results

    return run
