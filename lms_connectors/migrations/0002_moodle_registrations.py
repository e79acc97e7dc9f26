"""Registrations that can be retired; one course per LMS course whatever the registration.

LtiContext is now keyed by issuer + context id. Existing contexts get their platform's
issuer; where two registrations of one LMS had already forked a course, the oldest context
is kept and the newer ones' placed activities move to it (the forked CAIPI courses stay,
for an admin to merge or delete).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _fill_issuers(apps, schema_editor):
    LtiContext = apps.get_model("lms_connectors", "LtiContext")
    LtiResourceLink = apps.get_model("lms_connectors", "LtiResourceLink")
    kept = {}
    for context in LtiContext.objects.select_related("platform").order_by("created_at", "pk"):
        key = (context.platform.issuer, context.context_id)
        if key not in kept:
            context.issuer = key[0]
            context.save(update_fields=["issuer"])
            kept[key] = context
            continue
        survivor = kept[key]
        taken = set(survivor.links.values_list("resource_link_id", flat=True))
        LtiResourceLink.objects.filter(context=context).exclude(resource_link_id__in=taken).update(
            context=survivor
        )
        context.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("lms_connectors", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LtiLaunchRole",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("role", models.CharField(max_length=20)),
                (
                    "lms_admin",
                    models.BooleanField(
                        default=False,
                        help_text="The launch carried an institution or system Administrator role.",
                    ),
                ),
                ("launched_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="RegistrationInvite",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                (
                    "activate",
                    models.BooleanField(
                        default=False,
                        help_text="Activate the registration at once instead of leaving it pending.",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.RemoveConstraint(
            model_name="lticontext",
            name="lti_context_unique",
        ),
        migrations.AddField(
            model_name="lticontext",
            name="issuer",
            field=models.CharField(default="", max_length=255),
            preserve_default=False,
        ),
        migrations.RunPython(_fill_issuers, migrations.RunPython.noop),
        migrations.AddField(
            model_name="platform",
            name="retired_at",
            field=models.DateTimeField(
                blank=True, help_text="Set when an admin retired this registration.", null=True
            ),
        ),
        migrations.AddField(
            model_name="ltilaunchrole",
            name="context",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="launch_roles",
                to="lms_connectors.lticontext",
            ),
        ),
        migrations.AddField(
            model_name="ltilaunchrole",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="lti_launch_roles",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="registrationinvite",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="registrationinvite",
            name="platform",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="invites",
                to="lms_connectors.platform",
            ),
        ),
        migrations.AddConstraint(
            model_name="ltilaunchrole",
            constraint=models.UniqueConstraint(
                fields=("context", "user"), name="lti_launch_role_unique"
            ),
        ),
    ]
