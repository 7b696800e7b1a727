"""`manage.py webhooks_listen` (a real process) receiving from a real Celery worker; `manage.py demo_heartbeats`;
refused webhook URLs name the settings that allow local receivers."""

import queue
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from terminals.demo import DEMO_TERMINALS
from terminals.models import Terminal, TerminalStatus
from tests.base import assert_problem
from tests.conftest import ROOT, wait_for, worker_env
from webhooks.demo import DEMO_WEBHOOK_URL, webhook_subscription_demo_seed
from webhooks.models import WebhookDelivery, WebhookSubscription

PI = "/v1/payment-intents"


class Listener:
    """`manage.py webhooks_listen` in its own process; its output lines arrive on a queue."""

    def __init__(self, operator):
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "webhooks_listen", "--operator", operator.pk],
            cwd=ROOT,
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_line(timeout=60)
        match = re.search(r"Listening on (http://127\.0\.0\.1:\d+/webhooks) for .*; subscription (whs_\w+)", first)
        assert match, first
        self.url, self.subscription_id = match.groups()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout=30.0) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"webhooks_listen printed nothing in {timeout}s (exit code {self.proc.poll()})")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture
def listen(operator):
    started = []

    def start():
        listener = Listener(operator)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        if listener.proc.poll() is None:
            listener.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_listen_prints_one_verified_line_per_event_and_rejects_a_forgery(client, operator, listen):
    listener = listen()
    subscription = WebhookSubscription.objects.get(pk=listener.subscription_id)
    assert subscription.url == listener.url and subscription.event_types == ["*"] and subscription.is_active

    intent = client.post(PI, {"amount": 5000, "currency": "EUR"}, format="json").json()
    client.post(f"{PI}/{intent['id']}/authorize", {"payment_method": {"type": "card_present", "token": "tok_visa"}})
    lines = [listener.next_line(), listener.next_line()]
    assert sorted(line.split()[1] for line in lines) == ["payment_intent.authorized", "payment_intent.created"]
    assert all(line.endswith("verified") and intent["id"] in line for line in lines)
    wait_for(
        lambda: WebhookDelivery.objects.filter(subscription=subscription, status="succeeded").count() == 2,
        message="both deliveries recorded as succeeded",
    )

    # A request that is not signed with the subscription's secret is refused and reported, not printed as an event.
    forged = requests.post(
        listener.url,
        data=b'{"id":"evt_x","type":"payment_intent.captured","data":{"object":{}}}',
        headers={"webhook-id": "evt_x", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9v"},
        timeout=10,
    )
    assert forged.status_code == 400
    assert "REJECTED  evt_x" in listener.next_line()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_the_readme_receiver_verifies_real_deliveries(client, tmp_path):
    readme = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n(# receiver\.py.*?)```", readme, re.S)
    (tmp_path / "receiver.py").write_text(code)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    created = client.post("/api/v1/webhooks", {"url": url, "event_types": ["*"]}, format="json").json()
    receiver = subprocess.Popen(
        [sys.executable, "-u", "receiver.py", created["secret"], str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _accepts(port), message="the README receiver listening")
        intent = client.post(PI, {"amount": 5000, "currency": "EUR"}, format="json").json()
        line = receiver.stdout.readline().strip()
        assert line.startswith(f"payment_intent.created {intent['id']} webhook-id evt_"), line
        forged = requests.post(url, data=b"{}", headers={"webhook-id": "evt_x", "webhook-timestamp": "1"}, timeout=10)
        assert forged.status_code == 400
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_listen_reuses_its_subscription_and_takes_over_the_demo_one(operator, listen):
    demo = webhook_subscription_demo_seed(operator=operator)
    first = listen()
    assert first.subscription_id == demo.id  # the demo subscription now points at the local receiver
    first.stop()
    second = listen()
    assert second.subscription_id == demo.id and second.url != DEMO_WEBHOOK_URL
    assert WebhookSubscription.objects.filter(operator=operator).count() == 1
    assert WebhookSubscription.objects.get(pk=demo.id).url == second.url


@pytest.mark.django_db
def test_listen_without_http_allowed_says_which_settings_to_set(operator):
    from django.core.management.base import CommandError

    with override_settings(WEBHOOK_ALLOW_HTTP=False), pytest.raises(CommandError, match="WEBHOOK_ALLOW_HTTP=1"):
        call_command("webhooks_listen", "--operator", operator.pk, "--port", "0")


@pytest.mark.django_db
@override_settings(WEBHOOK_ALLOW_HTTP=False, WEBHOOK_ALLOWED_NETWORKS=[])
def test_refused_urls_name_the_settings_that_allow_local_receivers(client):
    http = client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9000/hook", "event_types": ["*"]}, format="json")
    assert "WEBHOOK_ALLOW_HTTP" in assert_problem(http, 400, "url_not_allowed")["detail"]
    loopback = client.post(
        "/api/v1/webhooks", {"url": "https://127.0.0.1:9000/hook", "event_types": ["*"]}, format="json"
    )
    assert "WEBHOOK_ALLOWED_NETWORKS" in assert_problem(loopback, 400, "url_not_allowed")["detail"]


@pytest.mark.django_db
def test_demo_heartbeats_keep_the_demo_terminals_online(capsys):
    call_command("seed_demo")
    long_ago = timezone.now() - timedelta(hours=1)
    Terminal.objects.exclude(status=TerminalStatus.MAINTENANCE).update(status="offline", last_seen_at=long_ago)
    call_command("demo_heartbeats", "--rounds", "1", "--interval", "0")
    assert f"demo heartbeats: {len(DEMO_TERMINALS)} terminals" in capsys.readouterr().out
    terminals = Terminal.objects.filter(serial_number__in=[row[0] for row in DEMO_TERMINALS])
    assert {t.status for t in terminals} == {TerminalStatus.ONLINE, TerminalStatus.MAINTENANCE}
    assert all(t.last_seen_at > long_ago for t in terminals)
