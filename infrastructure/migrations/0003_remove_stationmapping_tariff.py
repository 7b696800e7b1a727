"""The station's tariff is kept by the charging app now (charging 0003 copies the links first)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('infrastructure', '0002_connector_list_index'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='stationmapping',
            name='tariff',
        ),
    ]
