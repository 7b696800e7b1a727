"""Migrations that move data: both directions, on a database that already holds rows.

Each test migrates the test database back and forward again (a transactional test, so nothing is left behind:
it ends on the latest migrations and the rows are flushed)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from evpay.crypto import encrypt


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def back_to_latest():
    yield
    _migrate(_latest())


@pytest.mark.django_db(transaction=True)
def test_webhook_secrets_are_plain_text_again_after_reversing_their_encryption(back_to_latest):
    from evpay.core.models import Operator
    from webhooks.models import WebhookSubscription

    operator = Operator.objects.create(name="Acme")
    subscription = WebhookSubscription.objects.create(
        operator=operator, url="https://example.com/hook", event_types=["*"], secret="whsec_plain", previous_secret=None
    )
    _migrate([("webhooks", "0001_initial")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhooksubscription WHERE id = %s", [subscription.pk])
        assert cursor.fetchone()[0] == "whsec_plain"
    _migrate(_latest())
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == "whsec_plain"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhooksubscription WHERE id = %s", [subscription.pk])
        assert cursor.fetchone()[0] != "whsec_plain"
    assert encrypt("x", purpose="webhooks.secret") != "x"


@pytest.mark.django_db(transaction=True)
def test_station_tariffs_are_carried_over_from_mappings_and_back(back_to_latest):
    from charging.models import StationTariff
    from charging.selectors import tariff_for_mapping
    from evpay.core.models import Operator
    from tests.charging_support import make_station, make_tariff

    operator = Operator.objects.create(name="Acme")
    make_tariff(operator)  # the default
    own = make_tariff(operator, name="Fast", is_default=False)
    with_own, without = (
        make_station(operator, tariff=own),
        make_station(operator, station_id="S2", cpms_station_id="C2"),
    )

    # An operator upgrading from before charging 0003: the tariff is a column of the mapping.
    _migrate([("charging", "0002_chargesession"), ("infrastructure", "0002_connector_list_index")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tariff_id FROM infrastructure_stationmapping ORDER BY id")
        assert dict(cursor.fetchall()) == {with_own.pk: own.pk, without.pk: None}
        cursor.execute("UPDATE infrastructure_stationmapping SET tariff_id = NULL WHERE id = %s", [with_own.pk])
        cursor.execute("UPDATE infrastructure_stationmapping SET tariff_id = %s WHERE id = %s", [own.pk, without.pk])

    _migrate(_latest())
    assert dict(StationTariff.objects.values_list("mapping_id", "tariff_id")) == {without.pk: own.pk}
    assert tariff_for_mapping(without) == own
    assert tariff_for_mapping(with_own).is_default
