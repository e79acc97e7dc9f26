from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class RagConfig(AppConfig):
    name = "rag"
    verbose_name = "Lecture notes"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete
        from django.urls import reverse

        from caipi.core import navigation
        from caipi.core.models import Course
        from rag.permissions import COURSE_MANAGE_DOCUMENTS

        navigation.register_course_section(
            navigation.CourseSection(
                key="lecture-notes",
                title=gettext_lazy("Lecture notes"),
                description=gettext_lazy(
                    "Upload or sync the notes the course assistant answers from, and see which "
                    "are used."
                ),
                action=COURSE_MANAGE_DOCUMENTS,
                url=lambda course: reverse("rag:documents", args=[course.pk]),
                order=15,
            )
        )

        # A course's vectors live outside the database: when the course row goes, its
        # Chroma collection must go too. The core cannot call rag (layers), so rag listens.
        def forget(sender: type, instance: Course, **kwargs: object) -> None:
            from rag.services import course_forget

            course_id = instance.pk
            transaction.on_commit(lambda: course_forget(course_id=course_id), robust=True)

        post_delete.connect(forget, sender=Course, weak=False, dispatch_uid="rag.course_forget")
