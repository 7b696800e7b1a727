"""Which tariff a station uses moves from infrastructure.StationMapping.tariff to charging.StationTariff.

Runs before infrastructure 0003 (which drops the old column), so the existing links are copied first; reversed,
infrastructure 0003 brings the column back first and this copies the links back into it."""

import django.db.models.deletion
from django.db import migrations, models


def links_copy_forward(apps, schema_editor):
    StationMapping = apps.get_model("infrastructure", "StationMapping")
    StationTariff = apps.get_model("charging", "StationTariff")
    StationTariff.objects.bulk_create(
        [
            StationTariff(mapping_id=mapping_id, tariff_id=tariff_id)
            for mapping_id, tariff_id in StationMapping.objects.filter(tariff__isnull=False).values_list(
                "pk", "tariff_id"
            )
        ],
        batch_size=1000,
    )


def links_copy_back(apps, schema_editor):
    StationMapping = apps.get_model("infrastructure", "StationMapping")
    StationTariff = apps.get_model("charging", "StationTariff")
    for mapping_id, tariff_id in StationTariff.objects.values_list("mapping_id", "tariff_id"):
        StationMapping.objects.filter(pk=mapping_id).update(tariff_id=tariff_id)


class Migration(migrations.Migration):

    dependencies = [
        ('charging', '0002_chargesession'),
        ('infrastructure', '0002_connector_list_index'),
    ]
    # The lower app's migration must not name charging; the order is stated here, by the upper app.
    run_before = [
        ('infrastructure', '0003_remove_stationmapping_tariff'),
    ]

    operations = [
        migrations.CreateModel(
            name='StationTariff',
            fields=[
                ('mapping', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='infrastructure.stationmapping')),
                ('tariff', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='station_tariffs', to='charging.tariff')),
            ],
        ),
        migrations.RunPython(links_copy_forward, links_copy_back),
    ]
