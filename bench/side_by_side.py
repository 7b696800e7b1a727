#!/usr/bin/env python
"""evpay side by side with a bare DRF reference app (`bench/reference/`), in one run, on the same PostgreSQL.

    .venv/bin/python bench/side_by_side.py                     # what `make bench` runs first (~8 min)
    BENCH_SECONDS=3 BENCH_INTENTS=100000 .venv/bin/python bench/side_by_side.py   # a quick look

Both apps are served by gunicorn with the same settings (the project's gunicorn.conf.py, GUNICORN_WORKERS sync
workers, default 2), evpay with its production settings (DEBUG off, SECRET_KEY and ALLOWED_HOSTS from the
environment, Redis cache, Prometheus multiprocess directory as in Compose). wrk drives both at 16 and 64
connections in alternating rounds (reference, evpay, reference, evpay, ...), so that the machine's drift, shared
with other work, cancels in the ratios. Webhook deliveries are compared with a bare Celery task doing one HTTP
POST (`bench/reference/refapp/celery_task.py`), both drained by a prefork worker of 2 processes, alternately.

Databases (dropped and rebuilt each run): BENCH_EVPAY_DATABASE (default evpay_bench_sidebyside) with
BENCH_INTENTS payment intents (default 1,000,000, inserted by generate_series) and BENCH_REFERENCE_DATABASE
(default evpay_bench_reference). Redis: CELERY_BROKER_URL and CACHE_URL (default redis://127.0.0.1:6379/12).
The table goes to stdout and to var/bench-side-by-side.md.
"""

import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "bench" / "reference"
WRK_DIR = ROOT / "bench" / "wrk"
VAR = ROOT / "var"

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")]
INTENTS = int(os.environ.get("BENCH_INTENTS", "1000000"))
CAPTURE_POOL = min(100_000, INTENTS // 10)  # intents 1..CAPTURE_POOL are authorized, the rest await authorization
SESSIONS = 256
TERMINALS = 256
# A comma-separated subset of the HTTP modes (create, get, authorize, capture, flow, list_first, list_deep, health,
# progress) for a quick look at some of them; the table of `make bench` has them all.
ONLY = {m for m in os.environ.get("BENCH_ONLY", "").split(",") if m}
WEBHOOK_EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "1500"))
WORKERS = os.environ.get("GUNICORN_WORKERS", "2")
EVPAY_DB = os.environ.get("BENCH_EVPAY_DATABASE", "evpay_bench_sidebyside")
REFERENCE_DB = os.environ.get("BENCH_REFERENCE_DATABASE", "evpay_bench_reference")
REDIS = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
PG = "postgresql://postgres@127.0.0.1:5432"

os.environ.update(
    DJANGO_SETTINGS_MODULE="evpay.settings.production",
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{EVPAY_DB}",
    SECRET_KEY=os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
    ALLOWED_HOSTS="127.0.0.1,localhost",
    CACHE_URL=os.environ.get("CACHE_URL", REDIS),
    CELERY_BROKER_URL=REDIS,
    # One key drives every request: the throttle still runs (its cost is measured), but never refuses.
    API_RATE_LIMIT="100000000/min",
    PROMETHEUS_MULTIPROC_DIR=str(VAR / "bench-metrics"),
    WEBHOOK_ALLOW_HTTP="1",
    WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
)
sys.path.insert(0, str(ROOT))

from profile_requests import deep_cursor  # noqa: E402  (bench/ is on the path of a script run from it)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def reference_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="refapp.settings", REFERENCE_DATABASE=REFERENCE_DB, PYTHONPATH=str(REFERENCE_DIR))
    return env


def phase(title: str) -> None:
    print(f"\n== {title}  ({datetime.now(UTC):%H:%M:%S})", flush=True)


# --- data -------------------------------------------------------------------------------------------------------


def seed_evpay() -> dict:
    """Operator, API key, INTENTS intents (SQL), terminals, charge sessions; returns what the rounds need."""
    from django.db import connection
    from django.utils import timezone

    from charging.services import charge_session_record_progress, charge_session_start, tariff_create
    from evpay.core.models import ALL_SCOPES
    from evpay.core.services import api_key_create, operator_create
    from infrastructure.services import mapping_create
    from payments import services as payments
    from terminals.models import Terminal

    operator = operator_create(name="Bench side by side")
    _, key = api_key_create(operator=operator, scopes=ALL_SCOPES, name="bench")
    started = time.perf_counter()
    columns = (
        "id, operator_id, amount, currency, status, amount_authorized, amount_capturable, amount_captured, "
        "capture_before, authorized_at, payment_method, processor, processor_reference, authorization_code, "
        "description, metadata, created_at, updated_at"
    )
    # Any other NOT NULL column the model has (or gains) gets its model default.
    from payments.models import PaymentIntent

    named = {c.strip() for c in columns.split(",")}
    extra = [
        f
        for f in PaymentIntent._meta.concrete_fields
        if f.column not in named and not f.null and f.has_default() and not callable(f.default)
    ]
    extra_columns = "".join(f", {f.column}" for f in extra)
    extra_values = "".join(f", %(x_{f.column})s" for f in extra)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO payments_paymentintent ({columns}{extra_columns})
            SELECT 'pi_bench' || lpad(g::text, 19, '0'), %(op)s, 5000, 'EUR', s.status,
                   s.held, s.held, 0, s.before, s.at, s.method, 'simulator', s.ref, s.code, '', '{{}}'::jsonb,
                   now() - g * interval '1 millisecond', now(){extra_values}
            FROM generate_series(1, %(n)s) AS g
            CROSS JOIN LATERAL (
                SELECT CASE WHEN g <= %(pool)s THEN 'authorized' ELSE 'requires_authorization' END AS status,
                       CASE WHEN g <= %(pool)s THEN 5000 ELSE 0 END AS held,
                       CASE WHEN g <= %(pool)s THEN now() + interval '7 days' END AS before,
                       CASE WHEN g <= %(pool)s THEN now() END AS at,
                       CASE WHEN g <= %(pool)s THEN '{{"type": "card_present", "brand": "visa", "last4": "4242",
                            "fingerprint": "fp_bench"}}'::jsonb END AS method,
                       CASE WHEN g <= %(pool)s THEN 'sim_bench' || g END AS ref,
                       CASE WHEN g <= %(pool)s THEN '123456' END AS code
            ) AS s
            """,
            {
                "op": operator.pk,
                "n": INTENTS,
                "pool": CAPTURE_POOL,
                **{f"x_{f.column}": f.get_db_prep_value(f.default, connection) for f in extra},
            },
        )
    print(f"{INTENTS:,} payment intents inserted in {time.perf_counter() - started:.1f} s")
    terminals = Terminal.objects.bulk_create(
        Terminal(id=f"trm_bench{i:05d}", operator=operator, serial_number=f"SN-BENCH-{i}", status="online")
        for i in range(TERMINALS)
    )
    tariff = tariff_create(
        operator=operator, name="Bench", currency="EUR", preauthorize_amount=5000, price_per_kwh=Decimal("0.59")
    )
    mapping_create(
        operator=operator,
        station_id="DE*EVP*BENCH",
        adapter_type="simulator",
        cpms_station_id="CP-BENCH",
        tariff_id=tariff.pk,
        connectors=[
            {
                "connector_id": str(c),
                "evse_uid": f"CP-BENCH-E{c}",
                "standard": "IEC_62196_T2",
                "power_type": "AC_3_PHASE",
                "max_power_kw": 22,
            }
            for c in range(SESSIONS)
        ],
    )
    sessions = []
    for i in range(SESSIONS):
        # A cap far above what the rounds charge, so that every reading stays an ordinary update.
        intent = payments.payment_intent_create(operator=operator, amount=10_000_000, currency="EUR")
        intent = payments.payment_intent_authorize(intent=intent, token="tok_visa")
        session = charge_session_start(
            operator=operator,
            terminal_id=terminals[i].pk,
            station_id="DE*EVP*BENCH",
            connector_id=str(i),
            payment_intent_id=intent.pk,
        )
        # Its first reading starts it (connector status, two events): the rounds measure ordinary readings.
        charge_session_record_progress(session=session, energy_wh=0, measured_at=timezone.now())
        sessions.append(session.pk)
    connection.close()
    with_vacuum(EVPAY_DB, ["payments_paymentintent"])
    VAR.mkdir(exist_ok=True)
    (VAR / "bench-terminals.txt").write_text("\n".join(t.pk for t in terminals) + "\n")
    (VAR / "bench-sessions.txt").write_text("\n".join(sessions) + "\n")
    return {
        "key": key,
        "operator": operator,
        "intent": f"pi_bench{1:019d}",
        "deep_cursor": deep_cursor(int(INTENTS * 0.9)),
    }


WRITTEN_BY_HTTP_ROUNDS = [
    "payments_paymentintent",
    "webhooks_event",
    "core_idempotencykey",
    "terminals_terminal",
    "terminals_terminalhealthevent",
    "charging_chargesession",
]


def with_vacuum(database: str, tables: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{database}", autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")


def seed_reference() -> int:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=REFERENCE_DIR,
        env=reference_env(),
        check=True,
    )
    import psycopg

    with psycopg.connect(f"{PG}/{REFERENCE_DB}", autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO refapp_item (amount, currency, created_at) VALUES (5000, 'EUR', now()) RETURNING id"
        ).fetchone()[0]


# --- servers and load -------------------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, app: str, cwd: Path, env: dict):
        self.name, self.port = name, free_port()
        env = dict(
            env,
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS=WORKERS,
            GUNICORN_THREADS="1",  # sync workers, both sides
            GUNICORN_ACCESS_LOG=str(VAR / f"bench-{name}-access.log"),
        )
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log = open(VAR / f"bench-{name}.log", "w")
        self.proc = subprocess.Popen(
            [str(gunicorn), app, "-c", str(ROOT / "gunicorn.conf.py"), "--log-level", "warning"],
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait(self, path: str, headers: dict) -> None:
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + path, headers=headers, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not start; see {self.log.name}")

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk(server: Server, script: str, args: list[str], connections: int, seconds: float) -> dict:
    threads = 2
    cpu = server.cpu_seconds()
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script,
            server.base,
            "--",
            *args,
        ],
        cwd=WRK_DIR,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"wrk failed: {out.stdout}{out.stderr}")
    out = out.stdout
    match = re.search(r"^RESULT (.*)$", out, re.M)
    if not match:
        raise SystemExit(f"wrk said:\n{out}")
    result = json.loads(match.group(1))
    result["cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    result["flow_rate"] = result["flows"] / (result["duration_us"] / 1e6)
    return result


class Rounds:
    """Every evpay measurement next to a reference one taken just before it, repeated ROUNDS times."""

    def __init__(self, reference: Server, evpay: Server, seed: dict, reference_item: int):
        self.reference, self.evpay, self.seed, self.item = reference, evpay, seed, reference_item
        self.rows: list[dict] = []
        self.next_authorize = CAPTURE_POOL + 1
        self.next_capture = 1
        self.progress_base = 0

    def tag(self) -> str:
        return secrets.token_hex(4)

    def evpay_args(self, mode: str, connections: int) -> tuple[str, list[str]]:
        key = self.seed["key"]
        if mode == "ref_contract":
            return "requests.lua", [mode, "-", "2", self.tag(), ""]
        if mode == "flow":
            return "flow.lua", [key, "2", self.tag()]
        extra = {
            "create": "",
            "get": self.seed["intent"],
            "authorize": str(self.next_authorize),
            "capture": str(self.next_capture),
            "list_first": "/v1/payment-intents",
            "list_deep": self.seed["deep_cursor"],
            "health": str(VAR / "bench-terminals.txt"),
            "progress": str(VAR / "bench-sessions.txt"),
        }[mode]
        wrk_mode = {"list_first": "list", "list_deep": "list"}.get(mode, mode)
        return "requests.lua", [wrk_mode, key, "2", self.tag(), extra]

    def measure(self, label: str, mode: str, reference_mode: str) -> None:
        if ONLY and mode not in ONLY:
            return
        for connections in CONNECTIONS:
            ref_runs, ev_runs = [], []
            for _ in range(ROUNDS):
                ref_args = [reference_mode, "-", "2", self.tag(), str(self.item)]
                ref_runs.append(wrk(self.reference, "requests.lua", ref_args, connections, SECONDS))
                script, args = self.evpay_args(mode, connections)
                if mode == "progress":
                    # readings only grow: each round starts above everything sent before
                    self.progress_base += 10_000_000
                    args.append(str(self.progress_base))
                # a flow is three requests: its rounds are longer, so that whole flows finish in them
                # (`ref_contract`, the floor, is the reference app's: measured in its place, on its server)
                server = self.reference if mode.startswith("ref_") else self.evpay
                run = wrk(server, script, args, connections, SECONDS * (3 if mode == "flow" else 1))
                ev_runs.append(run)
                consumed = 2 * (run["requests"] + 2 * connections)
                if mode == "authorize":
                    self.next_authorize += consumed
                elif mode == "capture":
                    self.next_capture += consumed
            self.rows.append(summarize(label, mode, reference_mode, connections, ref_runs, ev_runs))
            print_row(self.rows[-1])


def summarize(label, mode, reference_mode, connections, ref_runs, ev_runs) -> dict:
    rate_key = "flow_rate" if mode == "flow" else "rate"
    ref_rate = statistics.mean(r["rate"] for r in ref_runs)
    ev_rate = statistics.mean(r[rate_key] for r in ev_runs)
    return {
        "label": label,
        "mode": mode,
        "against": "POST" if reference_mode == "ref_create" else "GET",
        "connections": connections,
        "ref_rate": ref_rate,
        "ref_p50": statistics.median(r["p50_us"] for r in ref_runs) / 1000,
        "ref_p99": statistics.median(r["p99_us"] for r in ref_runs) / 1000,
        "ref_cpu": statistics.mean(r["cpu_ms"] for r in ref_runs),
        "rate": ev_rate,
        "p50": statistics.median(r["p50_us"] for r in ev_runs) / 1000,
        "p99": statistics.median(r["p99_us"] for r in ev_runs) / 1000,
        "cpu": statistics.mean(r["cpu_ms"] for r in ev_runs),
        "ratio": ev_rate / ref_rate,
        "errors": sum(r["status_errors"] + r["socket_errors"] + r["bad"] for r in ev_runs + ref_runs),
    }


HEADER = (
    "| operation | conns | reference req/s | p50 / p99 ms | evpay req/s | p50 / p99 ms | ratio | p99 ratio "
    "| CPU ms/req ref / evpay | errors |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def format_row(row: dict) -> str:
    unit = " flows/s" if row["mode"] == "flow" else ""
    return (
        f"| {row['label']} | {row['connections']} | {row['ref_rate']:.0f} ({row['against']}) | "
        f"{row['ref_p50']:.1f} / {row['ref_p99']:.1f} | {row['rate']:.1f}{unit} | "
        f"{row['p50']:.1f} / {row['p99']:.1f} | "
        f"**{row['ratio']:.2f}** | {row['p99'] / row['ref_p99']:.1f} | {row['ref_cpu']:.1f} / {row['cpu']:.1f} | "
        f"{row['errors']} |"
    )


def print_row(row: dict) -> None:
    print(format_row(row), flush=True)


# --- webhooks ---------------------------------------------------------------------------------------------------


def start_celery(app: str, queue: str, cwd: Path, env: dict, name: str) -> subprocess.Popen:
    log = open(VAR / f"bench-{name}-worker.log", "w")
    level = os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING")
    # The same log level for both workers: evpay's logging settings take theirs from LOG_LEVEL (INFO by default,
    # Celery's two lines per task), not from --loglevel, which is all the bare worker has.
    env = dict(env, LOG_LEVEL=level)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "-Q",
            queue,
            "--loglevel",
            level,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}@%h",
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def drain_rate(receiver, expected: int, worker: subprocess.Popen) -> float:
    deadline = time.monotonic() + float(os.environ.get("BENCH_DRAIN_TIMEOUT", "300"))
    try:
        while receiver.count() < expected:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(
                    f"webhook round stalled at {receiver.count()} of {expected} (worker exit {worker.poll()})"
                )
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(30)
    arrivals = sorted(r.at for r in receiver.received[:expected])
    return (expected - 1) / (arrivals[-1] - arrivals[0])


def bench_webhooks(operator) -> dict:
    from django.db import transaction

    from evpay.celery import app as evpay_app
    from tests.webhook_receiver import Receiver
    from webhooks.services import event_emit, webhook_subscription_create

    sys.path.insert(0, str(REFERENCE_DIR))
    from refapp.celery_task import app as reference_app

    evpay_app.set_current()  # webhooks.tasks.deliver is a shared task: it goes through the current app

    receiver = Receiver()
    receiver.thread.start()
    webhook_subscription_create(operator=operator, url=receiver.url, event_types=["*"])
    sample = {"id": "pi_bench", "object": "payment_intent", "amount": 5000, "currency": "EUR", "status": "captured"}
    body = json.dumps({"id": "evt_x", "type": "payment_intent.captured", "timestamp": "x", "data": {"object": sample}})
    ref_rates, ev_rates = [], []
    for _ in range(ROUNDS):
        receiver.received.clear()
        reference_app.control.purge()
        for _ in range(WEBHOOK_EVENTS):
            reference_app.send_task("refapp.post", args=[receiver.url, body], queue="bench_reference")
        worker = start_celery("refapp.celery_task", "bench_reference", REFERENCE_DIR, reference_env(), "reference")
        ref_rates.append(drain_rate(receiver, WEBHOOK_EVENTS, worker))

        receiver.received.clear()
        for start in range(0, WEBHOOK_EVENTS, 100):
            with transaction.atomic():
                for _ in range(start, min(start + 100, WEBHOOK_EVENTS)):
                    event_emit(operator=operator, type="payment_intent.captured", data_object=sample)
        worker = start_celery("evpay", "webhooks", ROOT, dict(os.environ), "evpay")
        ev_rates.append(drain_rate(receiver, WEBHOOK_EVENTS, worker))
        print(
            f"webhook round: bare Celery task {ref_rates[-1]:.0f}/s, evpay deliveries {ev_rates[-1]:.0f}/s", flush=True
        )
    receiver.server.shutdown()
    evpay_app.control.purge()
    return {"ref": statistics.mean(ref_rates), "evpay": statistics.mean(ev_rates)}


# --- main -------------------------------------------------------------------------------------------------------


def main() -> None:
    began = time.perf_counter()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    load_before = os.getloadavg()
    phase(f"databases {EVPAY_DB} and {REFERENCE_DB}")
    VAR.mkdir(exist_ok=True)
    shutil.rmtree(VAR / "bench-metrics", ignore_errors=True)
    (VAR / "bench-metrics").mkdir()
    recreate_database(EVPAY_DB)
    recreate_database(REFERENCE_DB)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    item = seed_reference()

    import django

    django.setup()
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # this process only; the servers log as in production
    from evpay.celery import app as evpay_app

    phase(f"seeding evpay: {INTENTS:,} intents, {TERMINALS} terminals, {SESSIONS} charge sessions")
    seed = seed_evpay()
    if not REDIS.startswith("memory://"):
        evpay_app.control.purge()  # the start commands of the seeded sessions: no worker runs in the HTTP rounds

    reference = Server("reference", "refapp.wsgi:application", REFERENCE_DIR, reference_env())
    evpay = Server("evpay", "evpay.wsgi:application", ROOT, dict(os.environ))
    rows = []
    try:
        reference.wait(f"/items/{item}", {})
        evpay.wait(f"/v1/payment-intents/{seed['intent']}", {"X-API-Key": seed["key"]})
        rounds = Rounds(reference, evpay, seed, item)
        if os.environ.get("BENCH_SKIP_HTTP"):
            raise KeyboardInterrupt
        for server, args in (
            (reference, ["ref_get", "-", "2", "w", str(item)]),
            (evpay, ["get", seed["key"], "2", "w", seed["intent"]]),
        ):
            wrk(server, "requests.lua", args, 16, 2)  # warm every worker
        phase(
            f"HTTP rounds: {ROUNDS} x {SECONDS:g} s per side, {' and '.join(map(str, CONNECTIONS))} connections, "
            f"gunicorn {WORKERS} sync workers each"
        )
        print(HEADER)
        rounds.measure("`POST /v1/payment-intents`", "create", "ref_create")
        rounds.measure("floor: the reference + create's round trips (`/items/contract`)", "ref_contract", "ref_create")
        rounds.measure("`GET /v1/payment-intents/{id}`", "get", "ref_get")
        rounds.measure("`POST .../authorize`", "authorize", "ref_create")
        rounds.measure("`POST .../capture`", "capture", "ref_create")
        rounds.measure("create -> authorize -> capture", "flow", "ref_create")
        rounds.measure(f"`GET /v1/payment-intents` first page (50 of {INTENTS:,})", "list_first", "ref_get")
        rounds.measure("`GET /v1/payment-intents` page at 90 % of the cursor", "list_deep", "ref_get")
        rounds.measure("`POST /v1/terminals/{id}/health-events`", "health", "ref_create")
        rounds.measure("`PUT /v1/adhoc-charges/{id}/progress`", "progress", "ref_create")
        rows = rounds.rows
    except KeyboardInterrupt:
        pass
    finally:
        reference.stop()
        evpay.stop()

    hooks = {"ref": float("nan"), "evpay": float("nan")}
    if not os.environ.get("BENCH_SKIP_WEBHOOKS"):
        # What the HTTP rounds wrote (hundreds of thousands of rows in a whole run), vacuumed and checkpointed
        # first: otherwise autovacuum and the checkpointer work through it during the delivery rounds, on the
        # same two CPUs, and the evpay side (whose attempts write) pays for the rounds before it.
        with_vacuum(EVPAY_DB, WRITTEN_BY_HTTP_ROUNDS)
        phase(f"webhook deliveries: {WEBHOOK_EVENTS} per round, {ROUNDS} rounds per side, prefork worker of 2")
        hooks = bench_webhooks(seed["operator"])

    lines = [
        f"`make bench` side by side, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs "
        f"({platform_name()}), load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; "
        f"rounds {ROUNDS} x {SECONDS:g} s per side and connection count (flows: 3 x); "
        f"whole run {time.perf_counter() - began:.0f} s.",
        "",
        HEADER,
        *map(format_row, rows),
        f"| webhook deliveries/s | - | {hooks['ref']:.0f} (bare Celery task) | - | {hooks['evpay']:.0f} | - | "
        f"**{hooks['evpay'] / hooks['ref']:.2f}** | - | - | - |",
    ]
    first = {r["connections"]: r for r in rows if r["mode"] == "list_first"}
    for row in rows:
        if row["mode"] == "list_deep":
            lines.append(
                f"\nDeep page / first page at {row['connections']} connections: p50 latency "
                f"{row['p50'] / first[row['connections']]['p50']:.2f}x, throughput "
                f"{row['rate'] / first[row['connections']]['rate']:.2f}x."
            )
    report = "\n".join(lines)
    (VAR / "bench-side-by-side.md").write_text(report + "\n")
    print("\n" + report)


def platform_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
