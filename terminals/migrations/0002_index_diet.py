from django.db import migrations

from evpay.core.migration_operations import DropPatternIndexes


class Migration(migrations.Migration):
    """Fewer indexes to write on the hot tables: the pattern-ops copies of id indexes
    (evpay.core.migration_operations)."""

    dependencies = [
        ("terminals", "0001_initial"),
    ]

    operations = [
        DropPatternIndexes(model_name="terminal", fields=["id"]),
        DropPatternIndexes(model_name="terminalhealthevent", fields=["id"]),
    ]
