"""The admin in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's Python client)."""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(tmp_path):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def login(page, base_url, username, password):
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


@pytest.mark.django_db(transaction=True)
def test_operator_admin_filters_intents_and_voids_one(live_server, browser_page, operator, other_operator):
    from evpay.core.services import operator_user_create
    from payments import services
    from payments.models import PaymentIntent

    operator_user_create(operator=operator, username="ops", password="ops-password-1", role="admin")
    authorized = services.payment_intent_create(operator=operator, amount=4200, currency="EUR")
    authorized = services.payment_intent_authorize(intent=authorized, token="tok_visa")
    pending = services.payment_intent_create(operator=operator, amount=1000, currency="EUR")
    foreign = services.payment_intent_create(operator=other_operator, amount=999, currency="EUR")

    page = browser_page
    login(page, live_server.url, "ops", "ops-password-1")
    page.goto(f"{live_server.url}/admin/payments/paymentintent/")
    listing = page.content()
    assert authorized.id in listing and pending.id in listing
    assert foreign.id not in listing  # staff see only their own operator

    page.click("#changelist-filter a:text-is('Authorized')")
    page.wait_for_url("**status__exact=authorized**")
    assert authorized.id in page.content() and pending.id not in page.content()

    page.check(f"input[name=_selected_action][value={authorized.id}]")
    page.select_option("select[name=action]", "void_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "Voided: 1" in page.inner_text(".messagelist")

    page.goto(f"{live_server.url}/admin/payments/paymentintent/?status__exact=voided")
    assert authorized.id in page.content()
    assert PaymentIntent.objects.get(pk=authorized.id).status == "voided"
    assert PaymentIntent.objects.get(pk=authorized.id).void_reason == "requested_by_customer"


@pytest.mark.django_db(transaction=True)
def test_viewer_sees_intents_but_cannot_run_actions(live_server, browser_page, operator):
    from evpay.core.services import operator_user_create
    from payments import services

    operator_user_create(operator=operator, username="viewer", password="viewer-password-1", role="viewer")
    intent = services.payment_intent_create(operator=operator, amount=4200, currency="EUR")
    page = browser_page
    login(page, live_server.url, "viewer", "viewer-password-1")
    page.goto(f"{live_server.url}/admin/payments/paymentintent/")
    assert intent.id in page.content()
    assert page.locator("select[name=action]").count() == 0


ARTIFACTS = Path(
    os.environ.get("EVPAY_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "var" / "test-artifacts")
)
LAPTOP = {"width": 1366, "height": 768}
MONEY = re.compile(r"\d+\.\d{2} EUR")
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def _fits_and_shoot(page, name: str) -> str:
    """The page has no horizontal scrollbar on a laptop screen; a screenshot is kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: {overflow}px wider than a {LAPTOP['width']}px screen"
    # A changelist scrolls inside its box rather than widen the page: the table must fit that box.
    table = page.evaluate(
        "(() => { const t = document.querySelector('#result_list');"
        " return t ? t.scrollWidth - t.parentElement.clientWidth : 0; })()"
    )
    assert table <= 0, f"{name}: the list is {table}px wider than its box on a {LAPTOP['width']}px screen"
    return page.inner_text("#content")


@pytest.mark.django_db(transaction=True)
def test_lists_and_pages_read_well_on_a_laptop(live_server, browser_page, capsys):
    from django.core.management import call_command
    from django.db import transaction

    from charging.models import ChargeSession
    from evpay.core.models import Operator
    from payments import services
    from webhooks.models import WebhookDelivery, WebhookSubscription
    from webhooks.services import event_emit
    from webhooks.signing import secret_generate

    call_command("seed_demo")  # the demo operator: captured intents, completed sessions, its admin user
    operator = Operator.objects.get(name="Demo CPO")
    WebhookSubscription.objects.create(
        operator=operator, url="https://93.184.216.34/hook", event_types=["*"], secret=secret_generate()
    )
    intent = services.payment_intent_create(operator=operator, amount=7500, currency="EUR")
    intent = services.payment_intent_authorize(intent=intent, token="tok_visa")
    with transaction.atomic():
        event_emit(operator=operator, type="payment_intent.authorized", data_object={"id": intent.id})
    session = ChargeSession.objects.filter(operator=operator, status="completed").first()
    delivery = WebhookDelivery.objects.filter(operator=operator).first()

    page = browser_page
    page.set_viewport_size(LAPTOP)
    login(page, live_server.url, "demo-admin", "demo-admin-password")
    base = f"{live_server.url}/admin"

    page.goto(f"{base}/")
    dashboard = page.inner_text("#dashboard")
    assert MONEY.search(dashboard), dashboard  # captured today, in major units with the currency
    _fits_and_shoot(page, "dashboard")

    page.goto(f"{base}/payments/paymentintent/")
    listing = _fits_and_shoot(page, "paymentintent-list")
    assert "75.00 EUR" in listing and "Visa •••• 4242" in listing and TIME.search(listing)
    assert "7500" not in listing
    page.goto(f"{base}/payments/paymentintent/?q=4242")  # search by card last4
    assert intent.id in page.inner_text("#result_list")
    page.goto(f"{base}/payments/paymentintent/?q={intent.processor_reference}")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto(f"{base}/payments/paymentintent/{quote(intent.pk)}/change/")
    detail = _fits_and_shoot(page, "paymentintent-detail")
    assert "75.00 EUR" in detail and "Visa •••• 4242" in detail and TIME.search(detail)
    assert '"last4"' not in detail  # the card, not its JSON

    page.goto(f"{base}/charging/chargesession/")
    listing = _fits_and_shoot(page, "chargesession-list")
    assert MONEY.search(listing) and "kWh" in listing and TIME.search(listing)
    page.goto(f"{base}/charging/chargesession/?q=DE*EVP*S0001")  # search by station id
    assert session.id in page.inner_text("#result_list")
    page.goto(f"{base}/charging/chargesession/{quote(session.pk)}/change/")
    detail = _fits_and_shoot(page, "chargesession-detail")
    assert MONEY.search(detail) and TIME.search(detail)

    page.goto(f"{base}/webhooks/webhookdelivery/")
    listing = _fits_and_shoot(page, "webhookdelivery-list")
    assert "Webhook deliveries" in page.content() and "deliverys" not in page.content().lower()
    assert delivery.id in listing and TIME.search(listing)
    page.goto(f"{base}/webhooks/webhookdelivery/{quote(delivery.pk)}/change/")
    detail = _fits_and_shoot(page, "webhookdelivery-detail")
    assert delivery.event_id in detail and TIME.search(detail)

    page.goto(f"{base}/webhooks/event/?q={intent.id}")  # events say which object they are about
    events = page.inner_text("#result_list")
    assert "payment_intent.authorized" in events and intent.id in events


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("docs", ["docs", "redoc"])
def test_api_docs_render_from_local_assets_only(live_server, browser_page, docs):
    page = browser_page
    outside = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(live_server.url)
            else (outside.append(route.request.url) or route.abort())
        ),
    )
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/api/{docs}")
    # An operation's summary and a heading of the guide, rendered from the schema.
    page.wait_for_function("document.body.innerText.includes('Create a payment intent')")
    page.wait_for_function("document.body.innerText.includes('Idempotency')")
    assert not outside, outside
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"api-{docs}.png"))
