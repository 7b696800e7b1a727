"""`manage.py demo_heartbeats`: the demo terminals send a heartbeat every --interval seconds, as real ones do, so
that `make run`'s estate stays online (the sweep turns terminals unseen for TERMINAL_OFFLINE_AFTER offline)."""

import random
import time

from django.core.management.base import BaseCommand
from django.db import OperationalError
from django.utils import timezone

from terminals.models import HealthEventType, Terminal, TerminalStatus
from terminals.services import DEMO_TERMINALS, terminal_health_event_record


class Command(BaseCommand):
    help = "Send heartbeats for the demo terminals until stopped (make run starts it)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between rounds (default 60).")
        parser.add_argument("--rounds", type=int, default=0, help="Stop after this many rounds (default: never).")

    def handle(self, *args, **options):
        serials = [row[0] for row in DEMO_TERMINALS]
        rounds = 0
        try:
            while True:
                sent = self._round(serials)
                rounds += 1
                self.stdout.write(f"demo heartbeats: {sent} terminals")
                if options["rounds"] and rounds >= options["rounds"]:
                    return
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            return

    def _round(self, serials: list[str]) -> int:
        sent = 0
        live = Terminal.objects.filter(serial_number__in=serials).exclude(status=TerminalStatus.DECOMMISSIONED)
        for terminal in live:
            try:
                terminal_health_event_record(
                    terminal=terminal,
                    type=HealthEventType.HEARTBEAT,
                    occurred_at=timezone.now(),
                    metrics={
                        "signal_strength_dbm": random.randint(-85, -55),
                        "temperature_c": round(random.uniform(18, 38), 1),
                    },
                )
                sent += 1
            except OperationalError as exc:  # the database is briefly busy: this terminal waits for the next round
                self.stderr.write(f"demo heartbeat of {terminal.serial_number} skipped: {exc}")
        return sent
