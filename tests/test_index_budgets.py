"""Index budgets of the hot tables: every index is written on every insert and on every update that is not HOT,
so a table that the request path writes keeps only the indexes some query reads (bench/README.md)."""

import pytest
from django.db import connection

# Table -> the indexes it may have: the primary key, the indexes of lists and sweeps, and the foreign keys whose
# column no other index leads with.
HOT_TABLES = {
    "payments_paymentintent": 4,
    "payments_refund": 4,
    "webhooks_event": 5,  # with `type` and its pattern-ops copy: the events API filters by a type's prefix
    "webhooks_webhookpayload": 2,
    "webhooks_webhookdelivery": 9,
    "core_idempotencykey": 3,
    "terminals_terminal": 7,
    "terminals_terminalhealthevent": 5,
    "charging_chargesession": 8,
}


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(HOT_TABLES))
def test_hot_table_keeps_to_its_index_budget(table):
    indexes = _indexes(table)
    assert indexes, f"{table}: no such table"
    assert len(indexes) <= HOT_TABLES[table], sorted(indexes)


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(HOT_TABLES))
def test_no_pattern_ops_copy_of_an_id_index(table):
    copies = [name for name, definition in _indexes(table).items() if "varchar_pattern_ops" in definition]
    assert copies == (["webhooks_event_type_94169249_like"] if table == "webhooks_event" else [])


@pytest.mark.django_db
def test_every_foreign_key_of_a_hot_table_leads_some_index():
    # An index whose first column is the foreign key's: what PostgreSQL needs to check a delete of the row it
    # points to without reading the whole table, and what a lookup by it reads.
    from django.apps import apps

    for model in apps.get_models():
        table = model._meta.db_table
        if table not in HOT_TABLES:
            continue
        definitions = _indexes(table).values()
        for field in model._meta.concrete_fields:
            if field.is_relation:
                assert any(f"btree ({field.column}" in d for d in definitions), (table, field.column)
