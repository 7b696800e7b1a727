from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("refapp", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("type", models.CharField(max_length=64)),
                ("data", models.JSONField()),
                ("created_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="IdempotencyKey",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("body", models.JSONField()),
                ("created_at", models.DateTimeField()),
            ],
        ),
    ]
