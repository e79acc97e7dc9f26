from django.apps import AppConfig


class LmsConnectorsConfig(AppConfig):
    name = "lms_connectors"

    def ready(self) -> None:
        from django.urls import reverse

        from caipi.core import navigation, notices
        from lms_connectors.permissions import COURSE_MANAGE_LMS_LINK
        from lms_connectors.selectors import pending_registrations_notices

        notices.register_notices("lti-pending-registrations", pending_registrations_notices)

        navigation.register_course_section(
            navigation.CourseSection(
                key="lms",
                title="LMS link and roster",
                description="Where this course comes from, and syncing its members from Moodle.",
                action=COURSE_MANAGE_LMS_LINK,
                url=lambda course: reverse("lti_course", args=[course.pk]),
                order=30,
            )
        )
