from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("deploy", "0003_endpoint_health_path"),
    ]

    operations = [
        migrations.AlterField(
            model_name="endpoint",
            name="state",
            field=models.CharField(
                choices=[
                    ("starting", "Starting"),
                    ("ready", "Ready"),
                    ("sleeping", "Sleeping"),
                    ("draining", "Draining"),
                    ("failed", "Failed"),
                ],
                default="ready",
                max_length=20,
            ),
        ),
    ]
