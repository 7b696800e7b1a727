"""Terminals benchmark: health-event ingestion through the API and `GET /v1/terminals/stats` latency on a large fleet.

    .venv/bin/python bench/terminals.py                 # 100,000 terminals, 1,000,000 health events
    .venv/bin/python bench/terminals.py --terminals 10000 --events 100000 --ingest-seconds 10   # a quick look

Runs against a dedicated PostgreSQL database (`--database`, default `evpay_bench_terminals` on 127.0.0.1, created
if missing; never the test database). The fleet and its events are generated in SQL (generate_series), then
vacuumed and analysed. The API is served by gunicorn (sync workers) on 127.0.0.1, as in production; the client runs
in this process, on the same machine. Figures go to stdout; bench/README.md records them.
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_NAME = "Bench fleet"
VENDORS = ["Ingenico", "Verifone", "PAX", "Castles", "Worldline"]
MODELS = ["Self 2000", "UX700", "IM30", "S1F2", "Valina", "Move 5000", "A920"]
# What a fleet reports: mostly heartbeats, some warnings, a few errors and recoveries.
EVENT_MIX = ["heartbeat"] * 89 + ["warning"] * 5 + ["error"] * 3 + ["recovered", "reboot", "tamper"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="evpay_bench_terminals")
    parser.add_argument("--terminals", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the fleet even if it has the right size")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="gunicorn workers (GUNICORN_WORKERS; threads each: GUNICORN_THREADS, default 4)",
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads for ingestion")
    parser.add_argument("--ingest-seconds", type=float, default=30)
    parser.add_argument("--stats-runs", type=int, default=50)
    return parser.parse_args()


def configure_environment(database: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="evpay.settings.local",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        DEBUG="0",
        CONN_MAX_AGE="60",
        API_RATE_LIMIT="10000000/min",
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
    )


def ensure_database(database: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def phase(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def generate_fleet(operator_id: str, terminals: int, events: int) -> None:
    """Terminals: 75% online (1% of those silent for an hour: `stale`), 10% offline, 5% faulted, 5% maintenance,
    5% decommissioned; 5 vendors, 7 models. Events spread evenly over the last 30 days, mixed as EVENT_MIX."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM terminals_terminalhealthevent WHERE operator_id = %s", [operator_id])
        cur.execute("DELETE FROM terminals_terminal WHERE operator_id = %s", [operator_id])
        cur.execute(
            """
            INSERT INTO terminals_terminal (id, operator_id, serial_number, vendor, model, firmware_version,
                station_id, location, capabilities, status, status_reason, last_seen_at, health_last_event_type,
                health_last_error_code, health_signal_strength_dbm, health_temperature_c, health_errors_24h,
                metadata, created_at, updated_at)
            SELECT 'trm_bench' || lpad(g::text, 15, '0'), %(op)s, 'SN-' || lpad(g::text, 9, '0'),
                   (%(vendors)s::text[])[1 + g %% 5], (%(models)s::text[])[1 + g %% 7], '4.2.' || (g %% 20),
                   'ST-' || (g / 4),
                   '{"address": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE",
                     "latitude": 52.52, "longitude": 13.405}'::jsonb,
                   '["CHIP_CARD_SUPPORT", "CONTACTLESS_CARD_SUPPORT", "PED_TERMINAL"]'::jsonb,
                   CASE WHEN g %% 20 < 15 THEN 'online' WHEN g %% 20 < 17 THEN 'offline'
                        WHEN g %% 20 = 17 THEN 'faulted' WHEN g %% 20 = 18 THEN 'maintenance'
                        ELSE 'decommissioned' END,
                   '',
                   CASE WHEN g %% 100 = 0 THEN now() - interval '1 hour'
                        ELSE now() - (g %% 120) * interval '1 second' END,
                   'heartbeat', NULL, -50 - g %% 40, 30 + g %% 15, CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END,
                   '{}'::jsonb, now() - g * interval '1 second', now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"op": operator_id, "n": terminals, "vendors": VENDORS, "models": MODELS},
        )
        cur.execute(
            """
            INSERT INTO terminals_terminalhealthevent (id, operator_id, terminal_id, type, occurred_at, code,
                message, metrics, created_at)
            SELECT 'the_bench' || lpad(g::text, 15, '0'), %(op)s,
                   'trm_bench' || lpad((1 + g %% %(terminals)s)::text, 15, '0'),
                   t.type, ts, CASE WHEN t.type = 'error' THEN 'E_PINPAD' END, NULL,
                   '{"signal_strength_dbm": -67, "temperature_c": 38.5, "uptime_s": 86400}'::jsonb, ts
            FROM generate_series(1, %(n)s) AS g
            CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 2591) %% 2592000) * interval '1 second' AS ts) AS o
            CROSS JOIN LATERAL (SELECT (%(mix)s::text[])[1 + abs(hashint4(g)) %% 100] AS type) AS t
            """,
            {"op": operator_id, "n": events, "terminals": terminals, "mix": EVENT_MIX},
        )
    connection.close()
    import psycopg
    from django.conf import settings

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}", autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE terminals_terminal")
        conn.execute("VACUUM ANALYZE terminals_terminalhealthevent")
        conn.execute("CHECKPOINT")  # so that writing the generated data back does not slow the measurements


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    """gunicorn with the project's gunicorn.conf.py (gthread workers, GUNICORN_THREADS threads each, access log),
    the access log going to var/ instead of the terminal."""
    import requests

    port = free_port()
    (ROOT / "var").mkdir(exist_ok=True)
    env = dict(
        os.environ,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_ACCESS_LOG=str(ROOT / "var" / "bench-terminals-access.log"),
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "evpay.wsgi:application", "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return proc, base
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    proc.wait(timeout=20)
    raise RuntimeError("gunicorn did not start")


def web_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time used so far by the gunicorn workers (Linux /proc): server cost per request, whatever else runs."""
    workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0.0
    for pid in workers:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def bench_stats(base: str, key: str, runs: int) -> None:
    import requests

    from evpay.core.models import Operator
    from terminals.selectors import terminal_stats

    session = requests.Session()
    session.headers["X-API-Key"] = key
    for _ in range(3):  # warm every worker's connection and caches
        body = session.get(f"{base}/v1/terminals/stats").json()
    print(f"total={body['total']} by_status={body['by_status']} stale={body['stale']}")
    print(f"health_events_24h={body['health_events_24h']}")
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        response = session.get(f"{base}/v1/terminals/stats")
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    print(
        f"GET /v1/terminals/stats over HTTP, {runs} sequential requests: p50 {ms(statistics.median(latencies))}, "
        f"p95 {ms(percentile(latencies, 95))}, max {ms(max(latencies))}"
    )

    operator = Operator.objects.get(name=OPERATOR_NAME)
    selector = []
    for _ in range(runs):
        started = time.perf_counter()
        terminal_stats(operator=operator)
        selector.append(time.perf_counter() - started)
    print(
        f"terminal_stats() in process (its 2 aggregate queries): p50 {ms(statistics.median(selector))}, "
        f"p95 {ms(percentile(selector, 95))}"
    )


def bench_ingestion(
    server: subprocess.Popen, base: str, key: str, terminals: int, clients: int, seconds: float
) -> None:
    import requests

    stop_at = time.monotonic() + seconds
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(seed: int):
        rng = random.Random(seed)
        session = requests.Session()
        session.headers["X-API-Key"] = key
        mine, bad = [], []
        while time.monotonic() < stop_at:
            terminal = f"trm_bench{1 + rng.randrange(terminals):015d}"
            event_type = rng.choice(EVENT_MIX)
            body = {
                "type": event_type,
                "occurred_at": datetime.now(UTC).isoformat(),
                "metrics": {"signal_strength_dbm": -60 - rng.randrange(30), "temperature_c": 35.5, "uptime_s": 3600},
            }
            if event_type == "error":
                body["code"] = "E_PINPAD"
            started = time.perf_counter()
            response = session.post(f"{base}/v1/terminals/{terminal}/health-events", json=body)
            mine.append(time.perf_counter() - started)
            if response.status_code != 201:
                bad.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    cpu_before = web_cpu_seconds(server)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = web_cpu_seconds(server) - cpu_before
    print(
        f"POST /v1/terminals/{{id}}/health-events, {clients} clients for {elapsed:.1f} s: {len(latencies)} events, "
        f"{len(latencies) / elapsed:.0f} events/s; latency p50 {ms(statistics.median(latencies))}, "
        f"p95 {ms(percentile(latencies, 95))}, p99 {ms(percentile(latencies, 99))}; failures {len(failures)}"
    )
    print(
        f"web workers' CPU per event: {ms(cpu / max(1, len(latencies)))} "
        f"(so about {len(latencies) / cpu:.0f} events/s per fully used core, database not included)"
    )
    if failures:
        print("first failures:", failures[:3])


def bench_beat_jobs() -> None:
    from terminals.services import terminals_errors_24h_refresh, terminals_mark_offline

    started = time.perf_counter()
    marked = terminals_mark_offline()
    elapsed = time.perf_counter() - started
    print(f"offline sweep: {marked} silent terminals turned offline (with events) in {ms(elapsed)}")
    started = time.perf_counter()
    refreshed = terminals_errors_24h_refresh()
    print(f"errors_24h refresh: {refreshed} terminals changed in {ms(time.perf_counter() - started)}")


def main() -> None:
    args = parse_args()
    configure_environment(args.database)
    sys.path.insert(0, str(ROOT))
    began = phase(f"database {args.database}")
    print("load average before the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    ensure_database(args.database)

    import django

    django.setup()
    from evpay.core.models import Operator
    from evpay.core.services import api_key_create
    from terminals.models import Terminal, TerminalHealthEvent

    operator, _ = Operator.objects.get_or_create(name=OPERATOR_NAME)
    _, key = api_key_create(operator=operator, scopes=["terminals:write"], name="bench")
    have = (
        Terminal.objects.filter(operator=operator).count(),
        TerminalHealthEvent.objects.filter(operator=operator).count(),
    )
    if args.regenerate or have != (args.terminals, args.events):
        started = phase(f"generating {args.terminals:,} terminals and {args.events:,} health events")
        generate_fleet(operator.pk, args.terminals, args.events)
        print(f"generated, vacuumed and analysed in {time.perf_counter() - started:.1f} s")
    else:
        print(f"reusing {have[0]:,} terminals and {have[1]:,} health events")
        from django.db import connection

        with connection.cursor() as cur:  # a previous run moved some terminals; restore the mix for `stale`
            cur.execute(
                "UPDATE terminals_terminal SET status = 'online', last_seen_at = now() - interval '1 hour' "
                "WHERE operator_id = %s AND id LIKE 'trm_bench%%' AND "
                "substr(id, 10)::bigint %% 100 = 0",
                [operator.pk],
            )

    server, base = start_server(args.workers)
    try:
        phase(f"stats latency (gunicorn, {args.workers} workers x {os.environ.get('GUNICORN_THREADS', '4')} threads)")
        bench_stats(base, key, args.stats_runs)
        phase("health-event ingestion through the API")
        bench_ingestion(server, base, key, args.terminals, args.clients, args.ingest_seconds)
    finally:
        server.terminate()
        server.wait(timeout=20)
    phase("beat jobs at this size")
    bench_beat_jobs()
    print(
        f"\nwhole run: {time.perf_counter() - began:.0f} s on {os.cpu_count()} CPUs; "
        "load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    )


if __name__ == "__main__":
    main()
