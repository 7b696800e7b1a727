"""`manage.py demo_heartbeats`: the demo terminals send a heartbeat every --interval seconds, as real ones do, so
that `make run`'s estate stays online (the sweep turns terminals unseen for TERMINAL_OFFLINE_AFTER offline)."""

import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError

from terminals.demo import terminal_demo_heartbeat


class Command(BaseCommand):
    help = "Send heartbeats for the demo terminals until stopped (make run starts it)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between rounds (default 60).")
        parser.add_argument("--rounds", type=int, default=0, help="Stop after this many rounds (default: never).")

    def handle(self, *args, **options):
        rounds = 0
        try:
            while True:
                try:
                    self.stdout.write(f"demo heartbeats: {terminal_demo_heartbeat()} terminals")
                except DatabaseError as exc:  # the database briefly busy or away: the next round tries again
                    self.stderr.write(f"demo heartbeats skipped this round: {exc}")
                rounds += 1
                if options["rounds"] and rounds >= options["rounds"]:
                    return
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            return
