"""The admin in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's Python client)."""

import os
import shutil

import pytest

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
