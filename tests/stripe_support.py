"""Stripe counterparts for the tests: localstripe (a stateful fake Stripe server nobody on this project wrote) in
its own process on a free 127.0.0.1 port, and a scripted HTTP server for what localstripe cannot do (idempotency
keys, 5xx, 429, decline codes, time-outs)."""

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import stripe

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


class LocalStripe:
    """localstripe on 127.0.0.1:<port>; its store survives stop/start (a file in `workdir`)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.store = workdir / "localstripe.pickle"
        self.log = workdir / "localstripe.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalStripe":
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "localstripe_server.py"), str(self.port), str(self.store)],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"localstripe exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("localstripe did not listen within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def client(self) -> stripe.StripeClient:
        """Our own view into localstripe's state, through the SDK."""
        return stripe.StripeClient(
            "sk_test_inspector", base_addresses={"api": self.url}, http_client=stripe.RequestsClient(timeout=5)
        )

    def intents_for(self, evpay_intent_id: str) -> list:
        """localstripe's PaymentIntents that carry our intent id in their metadata."""
        found = self.client().v1.payment_intents.list(params={"limit": 100}).data
        return [pi for pi in found if pi.metadata.to_dict().get("evpay_payment_intent_id") == evpay_intent_id]

    def refunds_of(self, stripe_intent_id: str) -> list:
        """localstripe's refunds of that PaymentIntent that we made (its own refund of an uncaptured rest aside)."""
        found = self.client().v1.refunds.list(params={"payment_intent": stripe_intent_id, "limit": 100}).data
        return [r for r in found if "evpay_refund_id" in r.metadata.to_dict()]

    def amount_received(self, stripe_intent_id: str) -> int:
        """What the PaymentIntent's charge took: localstripe has no `amount_received`; it books the released rest
        of a partial capture as a refund of the charge, which this does not count."""
        intent = self.client().v1.payment_intents.retrieve(stripe_intent_id)
        charge = self.client().v1.charges.retrieve(
            intent.latest_charge if isinstance(intent.latest_charge, str) else intent.latest_charge.id
        )
        if not charge.captured:
            return 0
        ours = sum(r.amount for r in self.refunds_of(stripe_intent_id))
        return charge.amount - (charge.amount_refunded - ours)


class ScriptedStripe:
    """An HTTP server that answers every request with the next scripted (status, body, delay, headers) and records
    what it was sent: method, path, headers, form body."""

    def __init__(self):
        self.script: list[tuple[int, dict, float, dict]] = []
        self.default: tuple[int, dict, float, dict] | None = None
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, payload, delay, headers = outer.script.pop(0) if outer.script else outer.default
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status: int, body: dict, *, delay: float = 0, headers: dict | None = None, times: int = 1):
        self.script.extend([(status, body, delay, headers or {})] * times)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stripe_intent(id_="pi_3Test", status="requires_capture", amount=5000) -> dict:
    """A Stripe PaymentIntent as the real API returns it (the fields we read)."""
    return {
        "id": id_,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0,
        "currency": "eur",
        "status": status,
        "capture_method": "manual",
        "latest_charge": "ch_3Test",
        "last_payment_error": None,
        "payment_method": {
            "id": "pm_1Test",
            "object": "payment_method",
            "type": "card",
            "card": {"brand": "mastercard", "last4": "4444", "fingerprint": "Xt5EWLLDS7FJjR1c"},
        },
        "metadata": {},
    }


def stripe_error(type_: str, message: str, **fields) -> dict:
    return {"error": {"type": type_, "message": message, **fields}}


def stripe_list(*objects: dict) -> dict:
    return {"object": "list", "data": list(objects), "has_more": False, "url": "/v1/refunds"}
