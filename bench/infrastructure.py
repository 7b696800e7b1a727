"""Charging-infrastructure benchmark: `/connectors/summary`, `/adapters/health` and a `/connectors` page on a large
estate, and one status poll of a large simulator fleet.

    /work/main/.venv/bin/python bench/infrastructure.py                      # 20,000 stations, 40,000 connectors
    /work/main/.venv/bin/python bench/infrastructure.py --stations 2000 --calls 20000   # a quick look

Runs against a dedicated PostgreSQL database (`--database`, default `evpay_bench_infrastructure` on 127.0.0.1,
created if missing; never the test database). The estate and the last five minutes of adapter calls are generated
in SQL (generate_series), then analysed. Requests go through Django's test client in this process (server-side
time: routing, auth, queries, rendering; no network). Figures go to stdout; bench/README.md records them.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OPERATOR_NAME = "Bench infrastructure"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="evpay_bench_infrastructure")
    parser.add_argument("--stations", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=200_000, help="adapter calls in the last 5 minutes")
    parser.add_argument("--poll-stations", type=int, default=5_000, help="stations in the polled simulator fleet")
    parser.add_argument("--runs", type=int, default=30)
    return parser.parse_args()


def setup(database: str) -> None:
    import psycopg

    os.environ.update(
        DJANGO_SETTINGS_MODULE="evpay.settings.local",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        API_RATE_LIMIT="10000000/min",
        CELERY_BROKER_URL="memory://",
    )
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()


def generate(operator_id: str, stations: int, calls: int, poll_stations: int) -> None:
    """Stations on both adapter types, two connectors each, statuses spread over the OCPI values; a
    separate operator with `poll_stations` simulator stations for the poll."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM infrastructure_connector")
        cur.execute("DELETE FROM infrastructure_stationmapping")
        cur.execute("DELETE FROM infrastructure_adaptercall")
        cur.execute(
            """INSERT INTO infrastructure_stationmapping (id, operator_id, station_id, adapter_type, cpms_station_id,
                   is_active, metadata, connectivity_test_status, connectivity_test_error, created_at, updated_at)
               SELECT 'map_bench' || lpad(g::text, 12, '0'), %(op)s, 'DE*BEN*S' || g,
                      CASE WHEN g %% 3 = 0 THEN 'ocpi' ELSE 'simulator' END, 'CP-' || g, true, '{}', '', '',
                      now() - g * interval '1 second', now()
               FROM generate_series(1, %(n)s) g""",
            {"op": operator_id, "n": stations},
        )
        cur.execute(
            """INSERT INTO infrastructure_connector (mapping_id, operator_id, connector_id, evse_uid, standard,
                   power_type, max_power_kw, status, status_updated_at, created_at, updated_at)
               SELECT m.id, m.operator_id, c::text, m.station_id || '*E' || c, 'IEC_62196_T2_COMBO', 'DC', 150,
                      (ARRAY['AVAILABLE','AVAILABLE','AVAILABLE','CHARGING','CHARGING','OUTOFORDER','INOPERATIVE',
                             'UNKNOWN'])[1 + abs(hashtext(m.id) + c) %% 8],
                      now(), m.created_at, now()
               FROM infrastructure_stationmapping m CROSS JOIN generate_series(1, 2) c""",
            {},
        )
        cur.execute(
            """INSERT INTO infrastructure_adaptercall (operator_id, adapter_type, operation, outcome, latency_ms,
                   error, created_at)
               SELECT %(op)s, CASE WHEN g %% 3 = 0 THEN 'ocpi' ELSE 'simulator' END, 'fetch_connector_statuses',
                      CASE WHEN g %% 20 = 0 THEN 'failure' ELSE 'success' END, g %% 400, '',
                      now() - (g %% 290) * interval '1 second'
               FROM generate_series(1, %(n)s) g""",
            {"op": operator_id, "n": calls},
        )
        cur.execute("ANALYZE")


def timed(fn, runs: int) -> str:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return (
        f"median {statistics.median(samples):7.1f} ms   p95 {samples[int(0.95 * (len(samples) - 1))]:7.1f} ms"
        f"   max {samples[-1]:7.1f} ms"
    )


def main():
    args = parse_args()
    setup(args.database)
    from django.db import connection
    from rest_framework.test import APIClient

    from evpay.core.models import Operator
    from evpay.core.services import api_key_create
    from infrastructure.services import adapter_config_ensure, adapter_poll, mapping_create

    operator, _ = Operator.objects.get_or_create(name=OPERATOR_NAME)
    fleet, _ = Operator.objects.get_or_create(name=OPERATOR_NAME + " poll")
    started = time.perf_counter()
    generate(operator.pk, args.stations, args.calls, args.poll_stations)
    print(
        f"generated {args.stations} stations, {2 * args.stations} connectors, {args.calls} adapter calls "
        f"in {time.perf_counter() - started:.1f} s"
    )
    _, key = api_key_create(operator=operator, scopes=["infrastructure:read"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    base = "/v1/charging-infrastructure"
    for path in (
        "/connectors/summary",
        "/adapters/health",
        "/connectors?limit=50",
        "/connectors?status=CHARGING",
        "/mappings?limit=50",
    ):

        def get(path=path):
            response = client.get(base + path)
            assert response.status_code == 200, response.content[:300]

        get()
        print(f"GET {path:32s} {timed(get, args.runs)}")

    # One poll of a fleet: fetch from the simulator, compare, record the changes (all change the first time).
    for i in range(args.poll_stations):
        mapping_create(
            operator=fleet,
            station_id=f"P{i}",
            adapter_type="simulator",
            cpms_station_id=f"POLL-{i}",
            connectors=[
                {
                    "connector_id": "1",
                    "evse_uid": "",
                    "standard": "IEC_62196_T2",
                    "power_type": "AC_3_PHASE",
                    "max_power_kw": 22,
                }
            ],
        )
    config = adapter_config_ensure(operator_id=fleet.pk, adapter_type="simulator")
    for label in ("first poll (every connector changes)", "second poll (no change)"):
        started = time.perf_counter()
        changed = adapter_poll(config=config)
        print(
            f"{label:40s} {args.poll_stations} connectors, {changed} events, "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )
    connection.close()


if __name__ == "__main__":
    main()
