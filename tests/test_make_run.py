"""`make run` from a fresh clone, with no database or broker server: it installs, migrates, seeds, serves.

It clones the committed tree, runs `make run` on embedded defaults (SQLite, filesystem broker), waits for
/health/ready, creates, authorizes and captures a payment intent with the printed API key, then charges a
car end to end (the start command goes through the Celery worker and the simulator CPMS)."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_make_run_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "evpay"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
    }
    env["PORT"] = str(port)
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As from a terminal: a suite started in the background (`cmd &` in a script) inherits SIGINT ignored,
            # and bash cannot trap a signal ignored when it starts, so the Ctrl-C below would reach nothing.
            preexec_fn=_interruptible,
        )
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
                except requests.RequestException:  # not listening yet, or too busy starting to answer in time
                    pass
            time.sleep(1)
        else:
            pytest.fail("make run did not become ready:\n" + log_path.read_text()[-3000:])

        headers = {"X-API-Key": key}
        intent = requests.post(
            f"{base}/v1/payment-intents", json={"amount": 2500, "currency": "EUR"}, headers=headers, timeout=10
        ).json()
        authorized = requests.post(
            f"{base}/v1/payment-intents/{intent['id']}/authorize",
            json={"payment_method": {"type": "card_present", "token": "tok_visa"}},
            headers=headers,
            timeout=10,
        )
        assert authorized.status_code == 200, authorized.text
        captured = requests.post(
            f"{base}/v1/payment-intents/{intent['id']}/capture", json={}, headers=headers, timeout=10
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["amount_captured"] == 2500
        assert (clone / "db.sqlite3").exists()
        _charge_a_car(base, headers)
        _run_the_readme_quickstart(clone, base, key)
        _demo_webhooks_are_delivered_and_verified(clone, base, headers)
        assert "demo heartbeats: 5 terminals" in (clone / "var" / "demo-heartbeats.log").read_text()
        assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]
    finally:
        # What a terminal's Ctrl-C does: signal make's whole process group.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    # make run stops everything it started: no server, worker or beat of the clone is left running.
    wait_until_gone = time.monotonic() + 30
    while _processes_in(clone) and time.monotonic() < wait_until_gone:
        time.sleep(0.5)
    leftovers = _processes_in(clone)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left running after make run stopped: {leftovers}"
    # Nothing it wrote is left for git to see in the checkout (the broker, logs and database live in ignored paths).
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert not status.stdout, status.stdout


def _run_the_readme_quickstart(clone: Path, base: str, key: str) -> None:
    """The README's quickstart shell blocks, in order, as a newcomer pastes them (with this run's key and port)."""
    readme = (clone / "README.md").read_text()
    section = readme[readme.index("## Quickstart") :]
    section = section[: section.index("\n## ", 5)]
    script = "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))
    script = re.sub(r"^export EVPAY_API_KEY=evp_\.\.\..*$", "", script, flags=re.M)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "EVPAY_API_KEY": key, "API": base},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.split()
    assert out[:2] == ["authorized", "4200"], done.stdout
    assert out[-1] == "charge.completed", done.stdout


def _demo_webhooks_are_delivered_and_verified(clone: Path, base: str, headers: dict) -> None:
    """make run's webhooks_listen receives the demo subscription's deliveries, verifies them, and they succeed."""
    (subscription,) = requests.get(f"{base}/api/v1/webhooks", headers=headers, timeout=10).json()["results"]
    assert subscription["url"].startswith("http://127.0.0.1:") and subscription["is_active"], subscription
    deliveries = f"{base}/api/v1/webhooks/{subscription['id']}/deliveries"
    deadline = time.monotonic() + 120
    while requests.get(deliveries, params={"status": "pending"}, headers=headers, timeout=10).json()["results"]:
        assert time.monotonic() < deadline, "demo deliveries still pending after two minutes"
        time.sleep(1)
    assert not requests.get(deliveries, params={"status": "failed"}, headers=headers, timeout=10).json()["results"]
    succeeded = requests.get(deliveries, params={"status": "succeeded", "limit": 200}, headers=headers, timeout=10)
    assert len(succeeded.json()["results"]) >= 10
    received = (clone / "var" / "webhooks.log").read_text()
    assert "charge.completed" in received and "payment_intent.captured" in received, received
    assert "REJECTED" not in received, received


def _processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == directory:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _charge_a_car(base: str, headers: dict) -> None:
    def call(method, path, body=None, expect=(200, 201)):
        response = requests.request(method, f"{base}{path}", json=body, headers=headers, timeout=10)
        assert response.status_code in expect, (path, response.status_code, response.text)
        return response.json()

    call(
        "POST",
        "/v1/charging-infrastructure/mappings",
        {
            "station_id": "SMOKE*S1",
            "adapter_type": "simulator",
            "cpms_station_id": "SIM-SMOKE-1",
            "connectors": [
                {
                    "connector_id": "1",
                    "evse_uid": "SMOKE*E1",
                    "standard": "IEC_62196_T2_COMBO",
                    "power_type": "DC",
                    "max_power_kw": 50,
                }
            ],
        },
    )
    tariff = call(
        "POST",
        "/v1/tariffs",
        {
            "name": "Smoke",
            "currency": "EUR",
            "price_per_kwh": "0.50",
            "price_per_minute": "0",
            "session_fee": "0",
            "vat_rate_percent": "0",
            "preauthorize_amount": 3000,
        },
    )
    call(
        "PATCH",
        "/v1/charging-infrastructure/mappings/"
        + call("GET", "/v1/charging-infrastructure/mappings?station_id=SMOKE*S1")["results"][0]["id"],
        {"tariff_id": tariff["id"]},
    )
    terminal = call("POST", "/v1/terminals", {"serial_number": "SMOKE-T1", "vendor": "Acme", "model": "P1"})
    intent = call("POST", "/v1/payment-intents", {"amount": 3000, "currency": "EUR", "terminal_id": terminal["id"]})
    call(
        "POST",
        f"/v1/payment-intents/{intent['id']}/authorize",
        {"payment_method": {"type": "card_present", "token": "tok_visa"}},
    )
    session = call(
        "POST",
        "/v1/adhoc-charges/start",
        {
            "terminal_id": terminal["id"],
            "station_id": "SMOKE*S1",
            "connector_id": "1",
            "payment_intent_id": intent["id"],
        },
    )
    deadline = time.monotonic() + 60
    while call("GET", f"/v1/adhoc-charges/{session['id']}")["status"] != "charging":
        assert time.monotonic() < deadline, "the worker never moved the session to charging"
        time.sleep(0.5)
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    call("PUT", f"/v1/adhoc-charges/{session['id']}/progress", {"energy_wh": 12000, "measured_at": measured_at})
    done = call("POST", f"/v1/adhoc-charges/{session['id']}/complete", {})
    assert done["status"] == "completed" and done["cost"]["total"] == 600  # 12 kWh x 0.50 EUR
    assert call("GET", f"/v1/payment-intents/{intent['id']}")["amount_captured"] == 600
