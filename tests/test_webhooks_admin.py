import pytest
from django.contrib.admin.utils import quote
from django.db import transaction
from django.test import Client
from django.urls import reverse

from evpay.core.services import operator_user_create
from webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription
from webhooks.services import event_emit
from webhooks.signing import secret_generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(operator):
    user = operator_user_create(operator=operator, username="ops", password="s3cret-pass!", role="admin")
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def subscription(operator):
    return WebhookSubscription.objects.create(
        operator=operator, url="https://93.184.216.34/hook", event_types=["*"], secret=secret_generate()
    )


def change_url(obj) -> str:
    # The admin unquotes the pk ("_" is its escape character: "whs_40..." would read as "whs@..."), so quote it.
    return reverse(f"admin:webhooks_{obj._meta.model_name}_change", args=[quote(obj.pk)])


def failed_delivery(operator):
    with transaction.atomic():
        event = event_emit(operator=operator, type="charge.failed", data_object={"id": "chs_1"})
    delivery = WebhookDelivery.objects.get(event=event)
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery, number=1, response_status=500, error="HTTP 500", response_body="receiver says no"
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempt_count=1, next_attempt_at=None)
    return delivery


def test_subscription_pages_never_show_the_secret(staff, subscription):
    for path in ("/admin/webhooks/webhooksubscription/", change_url(subscription)):
        page = staff.get(path)
        assert page.status_code == 200
        assert subscription.secret.encode() not in page.content
        assert subscription.secret_hint.encode() in page.content


def test_send_test_event_action(staff, subscription):
    response = staff.post(
        "/admin/webhooks/webhooksubscription/", {"action": "send_test_event", "_selected_action": [subscription.pk]}
    )
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(subscription=subscription).event_type == "webhook.test"


def test_delivery_page_shows_attempts_inline(staff, subscription, operator):
    delivery = failed_delivery(operator)
    page = staff.get(change_url(delivery))
    assert page.status_code == 200
    assert b"receiver says no" in page.content and b"HTTP 500" in page.content


def test_attempts_inline_is_read_only_even_for_an_admin(staff, subscription, operator):
    delivery = failed_delivery(operator)
    inline = next(
        f
        for f in staff.get(change_url(delivery)).context["inline_admin_formsets"]
        if f.opts.model is WebhookDeliveryAttempt
    )
    assert (inline.has_add_permission, inline.has_change_permission, inline.has_delete_permission) == (
        False,
        False,
        False,
    )
    assert inline.has_view_permission


def test_retry_now_action(staff, subscription, operator):
    delivery = failed_delivery(operator)
    response = staff.post(
        "/admin/webhooks/webhookdelivery/", {"action": "retry_now", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_other_operators_rows_are_hidden(staff, other_operator):
    theirs = WebhookSubscription.objects.create(
        operator=other_operator, url="https://93.184.216.34/x", event_types=["*"], secret=secret_generate()
    )
    assert theirs.pk.encode() not in staff.get("/admin/webhooks/webhooksubscription/").content
    assert staff.get(change_url(theirs)).status_code == 302
