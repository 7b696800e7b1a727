"""`make run` from a fresh clone, with no database or broker server: it installs, migrates, seeds, serves.

It clones the committed tree, runs `make run` on embedded defaults (SQLite, filesystem broker), waits for
/health/ready, and creates, authorizes and captures a payment intent with the printed API key."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_run_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "evpay"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    env["PORT"] = str(port)
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 420
        key = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            match = re.search(r"^EVPAY_API_KEY=(evp_\S+)$", log_path.read_text(), re.M)
            if match:
                key = match.group(1)
                try:
                    if requests.get(f"{base}/health/ready", timeout=3).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
            time.sleep(1)
        else:
            pytest.fail("make run did not become ready:\n" + log_path.read_text()[-3000:])

        headers = {"X-API-Key": key}
        intent = requests.post(f"{base}/v1/payment-intents", json={"amount": 2500, "currency": "EUR"},
                               headers=headers, timeout=10).json()
        authorized = requests.post(f"{base}/v1/payment-intents/{intent['id']}/authorize",
                                   json={"payment_method": {"type": "card_present", "token": "tok_visa"}},
                                   headers=headers, timeout=10)
        assert authorized.status_code == 200, authorized.text
        captured = requests.post(f"{base}/v1/payment-intents/{intent['id']}/capture", json={},
                                 headers=headers, timeout=10)
        assert captured.status_code == 200, captured.text
        assert captured.json()["amount_captured"] == 2500
        assert (clone / "db.sqlite3").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
