from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class PromptsConfig(AppConfig):
    name = "prompts"
    verbose_name = "Prompt templates"

    def ready(self) -> None:
        from django.urls import reverse

        from caipi.core import navigation
        from prompts.permissions import COURSE_MANAGE_PROMPTS

        navigation.register_course_section(
            navigation.CourseSection(
                key="prompts",
                title=gettext_lazy("Prompt templates"),
                description=gettext_lazy(
                    "Write, test and publish the prompts students run in one click."
                ),
                action=COURSE_MANAGE_PROMPTS,
                url=lambda course: reverse("prompts:course_prompts", args=[course.pk]),
                order=5,
            )
        )
