"""The delivery engine against a real HTTP receiver, driven in-process (one attempt per call)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.webhook_receiver import Reply
from webhooks import services
from webhooks.models import Event, WebhookDelivery, WebhookPayload, WebhookSubscription
from webhooks.services import (
    event_emit,
    webhook_deliveries_prune,
    webhook_deliveries_sweep,
    webhook_delivery_attempt,
    webhook_delivery_retry,
)
from webhooks.signing import secret_generate

pytestmark = pytest.mark.django_db


def subscribe(operator, url, event_types=("*",)):
    return WebhookSubscription.objects.create(
        operator=operator, url=url, event_types=list(event_types), secret=secret_generate()
    )


def emit(operator, type_="payment_intent.captured", object_id="pi_1"):
    with transaction.atomic():
        return event_emit(operator=operator, type=type_, data_object={"id": object_id, "object": "payment_intent"})


def only_delivery(event) -> WebhookDelivery:
    (delivery,) = WebhookDelivery.objects.filter(event=event)
    return delivery


def attempt(delivery) -> WebhookDelivery:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # due now
    webhook_delivery_attempt(delivery_id=delivery.pk)
    return WebhookDelivery.objects.get(pk=delivery.pk)


def verify(secret, request):
    return Webhook(secret).verify(request.body, request.headers)


def test_success_signs_to_standard_webhooks(operator, receiver):
    subscription = subscribe(operator, receiver.url)
    event = emit(operator)
    delivery = attempt(only_delivery(event))
    assert delivery.status == "succeeded" and delivery.attempt_count == 1 and delivery.next_attempt_at is None
    assert delivery.last_response_status == 200 and delivery.last_error is None
    (request,) = receiver.received
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event.id
    body = verify(subscription.secret, request)
    assert body == {
        "id": event.id,
        "type": "payment_intent.captured",
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"object": {"id": "pi_1", "object": "payment_intent"}},
    }
    with pytest.raises(WebhookVerificationError):
        verify(secret_generate(), request)
    (recorded,) = delivery.attempts.all()
    assert (recorded.number, recorded.response_status, recorded.error) == (1, 200, None)
    assert recorded.response_body == "ok"


def test_failure_is_retried_per_schedule_with_the_same_webhook_id(operator, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300]
    subscription = subscribe(operator, receiver.url)
    receiver.reply(Reply(500), Reply(500))
    delivery = only_delivery(emit(operator))
    before = timezone.now()
    delivery = attempt(delivery)
    assert delivery.status == "pending" and delivery.attempt_count == 1
    assert (delivery.last_response_status, delivery.last_error) == (500, "HTTP 500")
    assert before + timedelta(seconds=4) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=6)
    delivery = attempt(delivery)
    assert delivery.status == "pending" and delivery.attempt_count == 2
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 240 <= wait <= 361
    delivery = attempt(delivery)
    assert delivery.status == "succeeded" and delivery.attempt_count == 3
    assert [a.response_status for a in delivery.attempts.all()] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for request in receiver.received:
        verify(subscription.secret, request)


def test_retry_jitter_spreads_due_times(operator, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [100]
    subscribe(operator, receiver.url)
    due = []
    for i in range(12):
        receiver.reply(Reply(500))
        delivery = attempt(only_delivery(emit(operator, object_id=f"pi_{i}")))
        due.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
    assert all(79 <= d <= 121 for d in due)
    assert max(due) - min(due) > 5  # not one fixed delay


def test_last_failure_marks_the_delivery_failed(operator, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [1]
    subscribe(operator, receiver.url)
    receiver.reply(Reply(500), Reply(502))
    delivery = attempt(attempt(only_delivery(emit(operator))))
    assert delivery.status == "failed" and delivery.attempt_count == 2 and delivery.next_attempt_at is None
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # nothing more to do
    assert receiver.count() == 2


def test_410_disables_the_subscription(operator, receiver):
    subscription = subscribe(operator, receiver.url)
    receiver.reply(Reply(410))
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "failed" and delivery.last_response_status == 410
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_reason) == (False, "endpoint_gone")
    assert not WebhookDelivery.objects.filter(event=emit(operator)).exists()


def test_disabling_moves_updated_at_and_is_logged(operator, receiver, caplog):
    subscription = subscribe(operator, receiver.url)
    receiver.reply(Reply(410))
    attempt(only_delivery(emit(operator)))
    disabled = WebhookSubscription.objects.get(pk=subscription.pk)
    assert disabled.updated_at > subscription.updated_at and disabled.disabled_reason == "endpoint_gone"
    assert [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()] == [
        f"Webhook subscription {subscription.pk} disabled: endpoint_gone"
    ]


def test_redirect_is_a_failure_and_not_followed(operator, receiver):
    subscribe(operator, receiver.url)
    receiver.reply(Reply(302, headers={"Location": receiver.url + "/elsewhere"}))
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "pending" and delivery.last_response_status == 302
    assert "redirect" in delivery.last_error
    assert [r.path for r in receiver.received] == ["/hook"]


def test_timeout_is_a_failure(operator, receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    subscribe(operator, receiver.url)
    receiver.reply(Reply(200, delay=2))
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "pending" and delivery.attempt_count == 1
    assert delivery.last_response_status is None and delivery.last_error.startswith("timeout")
    assert delivery.attempts.get().duration_ms < 1900


def test_connection_refused_is_a_failure(operator, receiver):
    receiver.server.server_close()
    subscribe(operator, receiver.url)
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "pending" and delivery.last_error.startswith("connection_error")


@pytest.mark.parametrize(
    "status,retry_after,low,high",
    [
        (503, "3600", 3600, 3601),  # honoured
        (429, "999999", 24 * 3600, 24 * 3600 + 1),  # at most 24 h
        (503, "1", 4, 6),  # at least the scheduled step
        (500, "3600", 4, 6),  # only on 429/503
    ],
)
def test_retry_after_is_honoured_within_bounds(operator, receiver, settings, status, retry_after, low, high):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300]
    subscribe(operator, receiver.url)
    receiver.reply(Reply(status, headers={"Retry-After": retry_after}))
    delivery = attempt(only_delivery(emit(operator)))
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert low <= wait <= high


def test_long_failing_subscription_is_disabled(operator, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER = 5 * 24 * 3600
    subscription = subscribe(operator, receiver.url)
    receiver.reply(Reply(500))
    attempt(only_delivery(emit(operator, object_id="pi_a")))
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.failing_since is not None
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failing_since=timezone.now() - timedelta(days=6))
    pending = only_delivery(emit(operator, object_id="pi_b"))
    receiver.reply(Reply(500))
    delivery = attempt(only_delivery(emit(operator, object_id="pi_c")))
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_reason) == (False, "too_many_failures")
    assert delivery.status == "failed"
    pending = attempt(pending)  # the rest of its queue is not sent any more
    assert pending.status == "failed" and pending.attempt_count == 0
    assert receiver.count() == 2


def test_a_success_ends_the_failing_streak(operator, receiver):
    subscription = subscribe(operator, receiver.url)
    receiver.reply(Reply(500))
    delivery = attempt(only_delivery(emit(operator)))
    assert WebhookSubscription.objects.get(pk=subscription.pk).failing_since is not None
    attempt(delivery)
    assert WebhookSubscription.objects.get(pk=subscription.pk).failing_since is None


def test_rotation_signs_with_both_secrets_for_a_day(operator, receiver, client):
    subscription = subscribe(operator, receiver.url)
    old = subscription.secret
    new = client.put(
        f"/api/v1/webhooks/{subscription.pk}",
        {"url": receiver.url, "event_types": ["*"], "rotate_secret": True},
        format="json",
    ).json()["secret"]
    attempt(only_delivery(emit(operator, object_id="pi_a")))
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(old, request)
    verify(new, request)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    attempt(only_delivery(emit(operator, object_id="pi_b")))
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verify(new, request)
    with pytest.raises(WebhookVerificationError):
        verify(old, request)


def test_send_time_check_refuses_an_address_now_blocked(operator, receiver, settings):
    subscribe(operator, f"http://localhost:{receiver.port}/hook")  # allowed when saved (loopback allowed)
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "pending" and delivery.last_error.startswith("url_not_allowed")
    assert receiver.count() == 0


def test_host_name_is_resolved_once_and_sent_as_host_header(operator, receiver):
    subscribe(operator, f"http://localhost:{receiver.port}/hook")
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "succeeded"
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


def test_response_body_is_kept_truncated(operator, receiver):
    subscribe(operator, receiver.url)
    receiver.reply(Reply(500, body=b"x" * 10_000))
    delivery = attempt(only_delivery(emit(operator)))
    assert len(delivery.attempts.get().response_body) == 2048


def test_a_delivery_that_is_not_due_is_not_sent(operator, receiver):
    subscribe(operator, receiver.url)
    delivery = only_delivery(emit(operator))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert receiver.count() == 0


def test_deactivated_subscription_gets_nothing_more(operator, receiver, client):
    subscription = subscribe(operator, receiver.url)
    delivery = only_delivery(emit(operator))
    client.delete(f"/api/v1/webhooks/{subscription.pk}")
    delivery = attempt(delivery)
    assert delivery.status == "failed" and "deactivated" in delivery.last_error
    assert receiver.count() == 0


def test_retry_now_gives_a_failed_delivery_another_attempt(operator, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = []
    subscribe(operator, receiver.url)
    receiver.reply(Reply(500))
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "failed"
    delivery = webhook_delivery_retry(delivery=delivery)
    assert delivery.status == "pending"
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2


def test_retry_now_refuses_a_succeeded_delivery(operator, receiver):
    from evpay.core.errors import InvalidState

    subscribe(operator, receiver.url)
    delivery = attempt(only_delivery(emit(operator)))
    with pytest.raises(InvalidState):
        webhook_delivery_retry(delivery=delivery)


def test_sweeper_leaves_freshly_enqueued_deliveries_alone(operator, receiver, settings):
    settings.WEBHOOK_REQUEUE_AFTER = 60
    subscribe(operator, receiver.url)
    delivery = only_delivery(emit(operator))
    assert webhook_deliveries_sweep() == 0  # its task message is on its way
    WebhookDelivery.objects.filter(pk=delivery.pk).update(enqueued_at=timezone.now() - timedelta(seconds=61))
    assert webhook_deliveries_sweep() == 1
    assert webhook_deliveries_sweep() == 0
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        enqueued_at=None, next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    assert webhook_deliveries_sweep() == 0  # not due


def test_retention_prunes_old_succeeded_deliveries_and_payloads(operator, receiver, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    subscribe(operator, receiver.url)
    old_ok = attempt(only_delivery(emit(operator, object_id="pi_old_ok")))
    old_failed = only_delivery(emit(operator, object_id="pi_old_failed"))
    WebhookDelivery.objects.filter(pk=old_failed.pk).update(status="failed")
    recent_ok = attempt(only_delivery(emit(operator, object_id="pi_recent")))
    long_ago = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.filter(pk__in=[old_ok.pk, old_failed.pk]).update(created_at=long_ago)
    WebhookPayload.objects.filter(deliveries__in=[old_ok.pk, old_failed.pk]).update(created_at=long_ago)
    assert webhook_deliveries_prune() == 1
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {old_failed.pk, recent_ok.pk}
    assert WebhookPayload.objects.count() == 2
    assert Event.objects.count() == 3  # the event log itself is kept


def test_outcomes_are_counted(operator, receiver):
    def count(outcome):
        return REGISTRY.get_sample_value("evpay_webhook_deliveries_total", {"outcome": outcome}) or 0

    subscribe(operator, receiver.url)
    before = count("succeeded"), count("retrying")
    receiver.reply(Reply(500))
    attempt(attempt(only_delivery(emit(operator))))
    assert (count("succeeded"), count("retrying")) == (before[0] + 1, before[1] + 1)


@pytest.mark.django_db(transaction=True)
def test_parallel_attempts_send_once(operator, receiver, parallel, monkeypatch):
    subscribe(operator, receiver.url)
    receiver.reply(Reply(200, delay=0.3))
    with monkeypatch.context() as patched, transaction.atomic():
        # No task message: a Celery worker of other tests must not take it.
        patched.setattr(services, "_enqueue", lambda *args, **kwargs: None)
        event = event_emit(operator=operator, type="charge.failed", data_object={"id": "chs_1"})
    delivery = only_delivery(event)
    results = parallel(lambda i: webhook_delivery_attempt(delivery_id=delivery.pk), 6)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r is not None]) == 1
    delivery.refresh_from_db()
    assert receiver.count() == 1
    assert delivery.status == "succeeded" and delivery.attempt_count == 1


def test_https_to_the_checked_address_keeps_sni_and_certificate_checks(operator, receiver, tmp_path):
    """The request goes to the resolved IP, but TLS names the original host (SNI) and verifies its certificate:
    a self-signed certificate is refused."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_names = []
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)

    subscribe(operator, f"https://localhost:{receiver.port}/hook")
    delivery = attempt(only_delivery(emit(operator)))
    assert delivery.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
    assert server_names == ["localhost"]
    assert receiver.count() == 0


@pytest.mark.django_db(transaction=True)
def test_backlog_in_metrics_and_detailed_health(operator, client, anon_client, monkeypatch):
    subscribe(operator, "https://93.184.216.34/hook")
    with monkeypatch.context() as patched, transaction.atomic():
        patched.setattr(services, "_enqueue", lambda *args, **kwargs: None)  # stays pending: no worker is asked
        event = event_emit(operator=operator, type="charge.failed", data_object={"id": "chs_1"})
    component = client.get("/health/detailed").json()["components"]["webhook_backlog"]
    assert (component["status"], component["pending"], component["overdue"]) == ("ok", 1, 0)
    WebhookDelivery.objects.filter(event=event).update(
        next_attempt_at=timezone.now() - timedelta(minutes=6), created_at=timezone.now() - timedelta(minutes=7)
    )
    component = client.get("/health/detailed").json()["components"]["webhook_backlog"]
    assert (component["status"], component["pending"], component["overdue"]) == ("degraded", 1, 1)
    assert 419 <= component["oldest_pending_age_s"] <= 430
    text = anon_client.get("/metrics").content.decode()
    assert "evpay_webhook_backlog 1.0" in text
    assert "evpay_webhook_backlog_oldest_age_seconds" in text
