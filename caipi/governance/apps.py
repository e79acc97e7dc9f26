from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class GovernanceConfig(AppConfig):
    name = "caipi.governance"
    label = "governance"
    verbose_name = "Governance: keys, quotas, usage, privacy"

    def ready(self) -> None:
        from django.urls import reverse

        from caipi.core import navigation
        from caipi.core.audit import register_audit
        from caipi.core.permissions import SITE_ADMIN
        from caipi.governance import invalidation, redaction
        from caipi.governance.audit import audit_record, audit_snapshot
        from caipi.governance.permissions import COURSE_VIEW_USAGE

        invalidation.connect()
        redaction.install()
        register_audit(recorder=audit_record, snapshot=audit_snapshot)
        navigation.register_course_section(
            navigation.CourseSection(
                key="usage",
                title=gettext_lazy("Course usage"),
                description=gettext_lazy(
                    "Calls and tokens by day, model and role, with the course budget."
                ),
                action=COURSE_VIEW_USAGE,
                url=lambda course: reverse("governance:usage_course", args=[course.pk]),
                order=20,
            )
        )
        navigation.register_top_link(
            navigation.TopLink(
                key="keys",
                title=gettext_lazy("API keys"),
                url=lambda: reverse("governance:keys"),
                order=10,
            )
        )
        navigation.register_top_link(
            navigation.TopLink(
                key="usage",
                title=gettext_lazy("Usage"),
                url=lambda: reverse("governance:usage_site"),
                action=SITE_ADMIN,
                order=20,
            )
        )
