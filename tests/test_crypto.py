"""Secrets we read back are encrypted at rest, and survive a SECRET_KEY rotation listed as a fallback."""

import pytest
from django.db import connection
from django.test import override_settings

from evpay.crypto import InvalidToken, decrypt, encrypt
from webhooks.models import WebhookSubscription


def test_round_trip_and_purpose_separation():
    token = encrypt("whsec_abc", purpose="webhooks.secret")
    assert "whsec_abc" not in token
    assert decrypt(token, purpose="webhooks.secret") == "whsec_abc"
    with pytest.raises(InvalidToken):
        decrypt(token, purpose="infrastructure.credentials")


def test_rotated_secret_key_still_decrypts_through_fallbacks(settings):
    token = encrypt("whsec_abc", purpose="webhooks.secret")
    old_key = settings.SECRET_KEY
    new_key = "a-brand-new-secret-key-of-enough-length-0123456789"
    with override_settings(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key]):
        assert decrypt(token, purpose="webhooks.secret") == "whsec_abc"
    with override_settings(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(InvalidToken):
            decrypt(token, purpose="webhooks.secret")


@pytest.mark.django_db
def test_webhook_secret_is_not_stored_in_plain_text(client):
    response = client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}, format="json")
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhooksubscription WHERE id = %s", [response.json()["id"]])
        stored = cursor.fetchone()[0]
    assert secret not in stored and "whsec_" not in stored
    assert WebhookSubscription.objects.get(pk=response.json()["id"]).secret == secret
