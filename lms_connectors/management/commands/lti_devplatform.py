"""``manage.py lti_devplatform setup [--course ID]`` — register the built-in dev platform."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from caipi.core.models import Course
from lms_connectors.devplatform.services import devplatform_setup


class Command(BaseCommand):
    help = (
        "Register the development platform (CAIPI_DEV_PLATFORM) as an LTI platform, "
        "optionally mapping its demo course to an existing CAIPI course."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["setup"])
        parser.add_argument("--course", type=int, help="Map the demo course to this course id.")

    def handle(self, *args: Any, action: str, course: int | None, **options: Any) -> None:
        mapped = None
        if course is not None:
            mapped = Course.objects.filter(pk=course).first()
            if mapped is None:
                raise CommandError(f"No course with id {course}.")
        platform = devplatform_setup(course=mapped)
        self.stdout.write(
            f"Development platform registered: {platform.issuer} ({platform.client_id})."
        )
        if not settings.LTI_DEV_PLATFORM:
            self.stdout.write("Note: CAIPI_DEV_PLATFORM is off, so /lti/dev/ answers 404.")
        self.stdout.write(
            f"Open {settings.SITE_URL.rstrip('/')}/lti/dev/ to launch as student or lecturer."
        )
