"""prometheus_client multiprocess mode across containers.

prometheus_client names each process's files after its pid. Compose shares one metrics volume between the
web, worker and beat containers, and every container numbers its processes from 1, so two containers would
write the same file. Here a process is named `<host name>-<pid>` instead (underscores replaced: the file
name is split on them). `scripts/docker-entrypoint.sh` clears the files of its own host name at start,
which leaves the other containers' counters alone.

Must run before the first metric is created: `evpay/__init__.py` calls it.
"""

import os
import socket

# prometheus_client asks for the identifier on every value it writes (to notice a fork): the host name is read
# once per process, not once per metric update.
_HOST = socket.gethostname().replace("_", "-")


def process_identifier(pid: int | None = None) -> str:
    return f"{_HOST}-{pid or os.getpid()}"


def configure_multiprocess_identity() -> None:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


def mark_process_dead(pid: int) -> None:
    """A gunicorn or Celery child exited: drop its live gauges from the merge."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process_identifier(pid))
