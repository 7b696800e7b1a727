"""The Compose stack, the image and the settings it starts with, checked by reading them (no Docker engine here).

- every volume an evpay container mounts is a directory the Dockerfile creates and gives to its user;
- production refuses a missing, published or weak SECRET_KEY; Compose has no default for it;
- `.env.example` names every setting; `.env` stays out of the image;
- beat has a healthcheck that tells a ticking beat from a stuck one; the entry point clears this container's
  stale metrics files and no other's.
"""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EVPAY_IMAGE = "evpay:local"


# --- reading the Dockerfile ------------------------------------------------------------------------------


def dockerfile_facts(text: str) -> dict:
    """The final USER and, per directory made with `mkdir -p`, the user `chown` gave it (None: root's)."""
    joined = re.sub(r"\\\n", " ", text)
    user = "root"
    made: dict[str, str | None] = {}
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("USER "):
            user = line.split()[1].split(":")[0]
        if not line.startswith("RUN "):
            continue
        for command in re.split(r"&&|;", line[4:]):
            words = shlex.split(command)
            if words[:2] == ["mkdir", "-p"]:
                for path in words[2:]:
                    made.setdefault(path.rstrip("/"), None)
            elif words and words[0] == "chown":
                args = [w for w in words[1:] if not w.startswith("-")]
                owner, paths = args[0].split(":")[0], args[1:]
                for path in paths:
                    made[path.rstrip("/")] = owner
    return {"user": user, "dirs": made}


def unowned_mounts(compose: dict, dockerfile: str) -> list[str]:
    """Container paths of volumes on services running our image that the image does not create for its user."""
    facts = dockerfile_facts(dockerfile)
    problems = []
    for name, service in compose["services"].items():
        if "build" not in service and service.get("image") != EVPAY_IMAGE:
            continue  # postgres, redis, prometheus, grafana: their images own their paths
        for volume in service.get("volumes", []):
            target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
            owner = facts["dirs"].get(target.rstrip("/"))
            if owner != facts["user"]:
                problems.append(f"{name}: {target} ({'not created' if target not in facts['dirs'] else owner})")
    return problems


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_every_volume_of_the_app_is_created_in_the_image_for_its_user():
    compose = _compose()
    assert dockerfile_facts(_dockerfile())["user"] == "evpay"
    assert unowned_mounts(compose, _dockerfile()) == []
    # The multiprocess directory the settings point at is that volume.
    app_env = compose["services"]["web"]["environment"]
    mounts = [v.split(":")[1] for v in compose["services"]["web"]["volumes"]]
    assert app_env["PROMETHEUS_MULTIPROC_DIR"] in mounts


def test_the_volume_check_catches_a_path_the_image_does_not_create():
    compose = _compose()
    compose["services"]["worker"]["volumes"] = ["metrics:/var/run/evpay-metrics", "spool:/var/spool/evpay"]
    assert unowned_mounts(compose, _dockerfile()) == ["worker: /var/spool/evpay (not created)"]
    # Created but left to root (the original defect): caught as well.
    root_owned = _dockerfile().replace("chown evpay:evpay /app/var /var/run/evpay-metrics", "chown evpay /app/var")
    assert "web: /var/run/evpay-metrics (None)" in unowned_mounts(_compose(), root_owned)


def test_kubernetes_mounts_are_created_in_the_image_or_are_tmp():
    dirs = dockerfile_facts(_dockerfile())["dirs"]
    for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for match in re.finditer(r"mountPath: (\S+)", path.read_text()):
            assert match.group(1) == "/tmp" or dirs.get(match.group(1)) == "evpay", (path.name, match.group(1))


def test_image_entry_point_and_beat_healthcheck_are_wired():
    compose = _compose()
    assert '"/app/scripts/docker-entrypoint.sh"' in _dockerfile()
    assert compose["services"]["beat"]["healthcheck"]["test"] == ["CMD", "/app/scripts/healthcheck-beat.sh"]
    for name in ("web", "worker", "beat"):
        assert "healthcheck" in compose["services"][name], name
    assert compose["services"]["beat"]["environment"]["CELERY_BEAT_HEARTBEAT_FILE"] == "/tmp/celerybeat-heartbeat"


# --- secrets ---------------------------------------------------------------------------------------------


def test_compose_has_no_default_secret_key():
    secret = _compose()["services"]["web"]["environment"]["SECRET_KEY"]
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", secret), secret


def test_dotenv_stays_out_of_the_image_and_out_of_git():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and "!.env.example" in ignored
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def _production_start(secret_key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(DJANGO_SETTINGS_MODULE="evpay.settings.production", ALLOWED_HOSTS="evpay.example.com")
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    code = "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    "secret_key, complaint",
    [
        (None, "SECRET_KEY is not set"),
        ("", "SECRET_KEY is not set"),
        ("insecure-development-key-change-me-in-production", "published default"),
        ("change-me-in-a-real-deployment-0123456789", "published default"),
        ("replace-me-with-50-or-more-random-characters", "published default"),
        ("short-but-random-Xq3", "too weak"),
        ("a" * 60, "too weak"),
    ],
)
def test_production_refuses_to_start_without_a_real_secret_key(secret_key, complaint):
    result = _production_start(secret_key)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr, result.stderr[-500:]


def test_production_starts_with_a_real_secret_key():
    key = "k" + os.urandom(40).hex()
    result = _production_start(key)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(len(key))


def test_env_example_names_every_setting():
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    read = set()
    for path in list((ROOT / "evpay" / "settings").glob("*.py")) + [ROOT / "gunicorn.conf.py"]:
        text = path.read_text()
        read |= set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
        read |= set(re.findall(r"os\.environ\.get\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']", text))
    assert len(read) > 40  # the scan found the settings
    missing = sorted(read - named)
    assert not missing, f"add these settings to .env.example (with their defaults): {missing}"


# --- beat heartbeat and the entry point ------------------------------------------------------------------


def _run_script(name: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / name), *args], env={**os.environ, **env}, capture_output=True, text=True
    )


def test_beat_heartbeat_is_touched_on_every_tick(tmp_path, settings):
    from evpay.beat import HeartbeatScheduler
    from evpay.celery import app

    settings.CELERY_BEAT_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.setup_schedule()
    try:
        assert not (tmp_path / "heartbeat").exists()
        scheduler.tick()
        assert (tmp_path / "heartbeat").exists()
    finally:
        scheduler.close()


def test_beat_healthcheck_tells_a_fresh_heartbeat_from_a_stale_or_missing_one(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    env = {"CELERY_BEAT_HEARTBEAT_FILE": str(heartbeat)}
    missing = _run_script("healthcheck-beat.sh", env)
    assert missing.returncode == 1 and "no beat heartbeat" in missing.stderr
    heartbeat.touch()
    assert _run_script("healthcheck-beat.sh", env).returncode == 0
    old = time.time() - 600
    os.utime(heartbeat, (old, old))
    stale = _run_script("healthcheck-beat.sh", env)
    assert stale.returncode == 1 and "old" in stale.stderr


def test_entry_point_clears_this_containers_metrics_files_only(tmp_path):
    host = socket.gethostname().replace("_", "-")
    mine = [tmp_path / f"counter_{host}-7.db", tmp_path / f"gauge_livesum_{host}-1.db"]
    theirs = [tmp_path / "counter_otherhost-7.db", tmp_path / "histogram_otherhost-1.db"]
    for path in mine + theirs:
        path.write_bytes(b"x")
    result = _run_script("docker-entrypoint.sh", {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, "echo", "started")
    assert result.returncode == 0 and result.stdout.strip() == "started"  # then runs the command
    assert [p.exists() for p in mine] == [False, False]
    assert [p.exists() for p in theirs] == [True, True]


def test_entry_point_creates_a_missing_metrics_directory(tmp_path):
    target = tmp_path / "metrics"
    assert _run_script("docker-entrypoint.sh", {"PROMETHEUS_MULTIPROC_DIR": str(target)}, "true").returncode == 0
    assert target.is_dir()


def test_metrics_files_are_named_by_host_and_pid(tmp_path):
    """Containers sharing the metrics volume each number their processes from 1: pids alone would collide."""
    code = (
        "import evpay, os; from prometheus_client import Counter; "
        "Counter('evpay_test_identity', 'x').inc(); print(os.getpid())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "evpay.settings.test"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    host = socket.gethostname().replace("_", "-")
    assert (tmp_path / f"counter_{host}-{result.stdout.strip()}.db").exists(), list(tmp_path.iterdir())
