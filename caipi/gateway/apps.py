from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "caipi.gateway"
    label = "gateway"
    verbose_name = "Model gateway"

    def ready(self) -> None:
        from django.urls import reverse

        from caipi.core import navigation
        from caipi.gateway.permissions import COURSE_USE_ASSISTANT
        from lms_connectors import targets

        def assistant_url(course_id: int) -> str:
            return reverse("course_assistant", kwargs={"course_id": course_id})

        navigation.register_course_section(
            navigation.CourseSection(
                key="assistant",
                title="Course assistant",
                description="Ask questions and get answers streamed from the university's "
                "own models.",
                action=COURSE_USE_ASSISTANT,
                url=lambda course: assistant_url(course.pk),
                order=10,
            )
        )
        targets.register(
            targets.TargetKind(
                kind="assistant",
                label="Course assistant",
                resolve=lambda course, _: assistant_url(course.pk),
                choices=lambda course: [
                    targets.TargetChoice(
                        "assistant",
                        "Course assistant",
                        "Ask the course's models; answers stream in.",
                    )
                ],
            )
        )

        from caipi.gateway import lms_sources, prompt_wiring

        prompt_wiring.connect()
        lms_sources.connect()
