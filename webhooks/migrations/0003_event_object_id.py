from django.db import migrations, models


def copy_object_ids(apps, schema_editor):
    Event = apps.get_model("webhooks", "Event")
    batch = []
    for event in Event.objects.only("pk", "data").iterator(chunk_size=2000):
        object_id = ((event.data or {}).get("object") or {}).get("id") or ""
        if object_id:
            event.object_id = str(object_id)[:64]
            batch.append(event)
        if len(batch) >= 2000:
            Event.objects.bulk_update(batch, ["object_id"])
            batch = []
    if batch:
        Event.objects.bulk_update(batch, ["object_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_encrypt_secrets"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="object_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(copy_object_ids, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["operator", "object_id", "-created_at"], name="event_operator_object"),
        ),
    ]
