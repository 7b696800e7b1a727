"""`manage.py webhooks_listen`: a local webhook receiver, in the spirit of `stripe listen`.

It listens on 127.0.0.1 (a free port unless --port), points a subscription of the operator at itself (the one it
made before, else the operator's demo subscription, else a new one to every event), verifies each delivery's
Standard Webhooks signature with the `standardwebhooks` package and prints one line per event. The server's
processes need WEBHOOK_ALLOW_HTTP=1 and WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 to deliver to it (`make run` sets
both)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from evpay.core.errors import DomainError
from evpay.core.models import Operator
from webhooks import services
from webhooks.demo import DEMO_WEBHOOK_URL
from webhooks.models import ALL_EVENT_TYPES, WebhookSubscription

LISTEN_DESCRIPTION = "manage.py webhooks_listen"


class Command(BaseCommand):
    help = "Run a local webhook receiver subscribed to the operator's events; print one verified line per event."

    def add_arguments(self, parser):
        parser.add_argument("--operator", help='Operator name or op_ id (default: the only one, or "Demo CPO").')
        parser.add_argument("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
        parser.add_argument(
            "--events",
            default=ALL_EVENT_TYPES,
            help='Comma-separated event types for a new subscription (default "*").',
        )

    def handle(self, *args, **options):
        operator = self._operator(options["operator"])
        state = {"verifier": None}
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                at = timezone.now().strftime("%H:%M:%S")
                try:
                    event = state["verifier"].verify(body, headers)
                except (WebhookVerificationError, ValueError) as exc:
                    out.write(f"{at}  REJECTED  {headers.get('webhook-id', '-')}  bad signature: {exc}")
                    self._answer(400)
                    return
                obj = (event.get("data") or {}).get("object") or {}
                about = obj.get("id") or " ".join(str(obj[k]) for k in ("station_id", "connector_id") if k in obj)
                out.write(f"{at}  {event.get('type', '?'):<40} {headers['webhook-id']}  {about or '-'}  verified")
                self._answer(204)

            def _answer(self, status):
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", options["port"]), Handler)
        server.daemon_threads = True
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
        subscription = self._subscribe(operator=operator, url=url, events=options["events"])
        state["verifier"] = Webhook(subscription.secret)
        types = ", ".join(subscription.event_types)
        out.write(f"Listening on {url} for {operator.name}; subscription {subscription.id} ({types})")
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    def _operator(self, wanted: str | None) -> Operator:
        operators = Operator.objects.all()
        if wanted:
            found = operators.filter(pk=wanted).first() or operators.filter(name=wanted).first()
        else:
            found = operators.first() if operators.count() == 1 else operators.filter(name="Demo CPO").first()
        if found is None:
            raise CommandError("Name the operator with --operator (its name or op_ id).")
        return found

    def _subscribe(self, *, operator: Operator, url: str, events: str) -> WebhookSubscription:
        if not settings.WEBHOOK_ALLOW_HTTP:
            raise CommandError(
                "A local receiver is plain http: set WEBHOOK_ALLOW_HTTP=1 (and "
                "WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8) for this command, the web server and the workers."
            )
        mine = WebhookSubscription.objects.filter(operator=operator)
        subscription = (
            mine.filter(description=LISTEN_DESCRIPTION).order_by("-created_at").first()
            or mine.filter(url=DEMO_WEBHOOK_URL).first()
        )
        try:
            if subscription is None:
                event_types = [t.strip() for t in events.split(",") if t.strip()]
                return services.webhook_subscription_create(
                    operator=operator, url=url, event_types=event_types, description=LISTEN_DESCRIPTION
                )
            return services.webhook_subscription_update(
                subscription=subscription,
                url=url,
                event_types=subscription.event_types,
                description=LISTEN_DESCRIPTION,
                is_active=True,
            )
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # a DRF ValidationError from the URL guard
            detail = getattr(exc, "detail", None)
            if detail is None:
                raise
            raise CommandError(json.dumps(detail, default=str)) from exc
