"""Processes of a deployment for the suites that need one: a redis-server and a PostgreSQL cluster of their own
(free ports, temporary directories, so that a test may stop and restart them without touching the machine's),
gunicorn and a Celery worker pointed at them. Everything binds 127.0.0.1."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port, wait_for


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout=20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class RedisServer:
    def __init__(self, directory: Path):
        self.directory, self.port, self.proc = directory, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(up, timeout=20, message="redis-server to answer")

    def stop(self) -> None:
        _stop(self.proc)


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    return versions[-1].parent


def _as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PostgresCluster:
    """initdb in a temporary directory owned by the postgres user; trust authentication on 127.0.0.1 only."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="evpay-pg-"))
        self.data = self.directory / "data"
        self.port, self.running = free_port(), False
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(
            _as_postgres()
            + [str(_postgres_bin() / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def url(self, database: str = "evpay") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres() + [str(_postgres_bin() / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
            " -c fsync=off -c max_connections=60"
        )
        self._pg_ctl("-o", options, "-l", str(self.directory / "postgres.log"), "-w", "start")
        self.running = True

    def create_database(self, name: str = "evpay") -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return
            except psycopg.OperationalError:  # still starting up
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        if self.running:
            self._pg_ctl("-m", "fast", "-w", "stop")  # fast shutdown: every connection is cut
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def project_env(**settings) -> dict:
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="evpay.settings.test", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in settings.items()})
    return env


def manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


class Gunicorn:
    def __init__(self, env: dict, log: Path, workers: int = 2):
        self.port = free_port()
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(workers)}
        self.log, self.proc = log, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "evpay.wsgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

        def up():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                return requests.get(f"{self.url}/health", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=120, interval=0.5, message="gunicorn to answer")

    def stop(self) -> None:
        _stop(self.proc)


class Worker:
    def __init__(self, env: dict, log: Path, concurrency: int = 3, name: str = "stack"):
        self.env, self.log, self.concurrency, self.name, self.proc = env, log, concurrency, name, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evpay", "worker", "--loglevel", "INFO"]
            + ["--concurrency", str(self.concurrency), "--pool", "prefork", "--without-gossip", "--without-mingle"]
            + ["-n", f"{self.name}-{os.getpid()}@%h"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as an OOM kill or a lost host would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
