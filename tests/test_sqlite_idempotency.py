"""`make run` keeps its data in SQLite: the Idempotency-Key's plain statements must work there too (claim, replay,
422), not only on PostgreSQL where the suite runs."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.update(DJANGO_SETTINGS_MODULE="evpay.settings.local", DATABASE_URL="sqlite:///" + {db!r})
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from evpay.core.models import ALL_SCOPES
from evpay.core.services import api_key_create, operator_create
_, key = api_key_create(operator=operator_create(name="SQLite"), scopes=ALL_SCOPES)
client = Client(HTTP_X_API_KEY=key, HTTP_HOST="127.0.0.1")
def post(path, body, k):
    return client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=k)
first = post("/v1/payment-intents", {{"amount": 100, "currency": "EUR"}}, "k1")
again = post("/v1/payment-intents", {{"amount": 100, "currency": "EUR"}}, "k1")
other = post("/v1/payment-intents", {{"amount": 101, "currency": "EUR"}}, "k1")
card = {{"payment_method": {{"type": "card_present", "token": "tok_visa"}}}}
url = "/v1/payment-intents/" + first.json()["id"] + "/authorize"
authorized, replayed = post(url, card, "a1"), post(url, card, "a1")
print(first.status_code, again.status_code, again.headers.get("Idempotent-Replayed"),
      again.json() == first.json(), other.status_code, authorized.status_code, replayed.status_code,
      replayed.json() == authorized.json())
"""


def test_idempotency_keys_on_sqlite(tmp_path):
    code = SCRIPT.format(root=str(ROOT), db=str(tmp_path / "db.sqlite3"))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-8:] == ["201", "201", "true", "True", "422", "200", "200", "True"], result.stdout
