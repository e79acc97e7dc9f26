"""One LtiContext per issuer + context id (its own migration: PostgreSQL refuses to alter
a table with pending trigger events from 0002's data step in the same transaction)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lms_connectors", "0002_moodle_registrations"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="lticontext",
            constraint=models.UniqueConstraint(
                fields=("issuer", "context_id"), name="lti_context_unique"
            ),
        ),
    ]
