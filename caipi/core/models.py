"""Who uses CAIPI and in which course: users, courses and course memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class CourseRole(models.TextChoices):
    """A user's role inside one course, mapped from the LMS's roles."""

    LEARNER = "learner", _("Learner")
    TEACHING_ASSISTANT = "teaching_assistant", _("Teaching assistant")
    INSTRUCTOR = "instructor", _("Instructor")


class SiteRole(models.TextChoices):
    """A user's role across the whole site, independent of courses."""

    MEMBER = "member", _("Member")
    API_USER = "api_user", _("API user")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    """A person using CAIPI, from an LTI launch or created by an admin for API use.

    LTI users have a pseudonymous username derived from the platform's ``sub`` claim;
    name and e-mail are only filled as far as the platform sends them.
    """

    display_name = models.CharField(max_length=255, blank=True)
    locale = models.CharField(max_length=35, blank=True, help_text="As the LMS's launch sent it.")
    language = models.CharField(
        max_length=10, blank=True, help_text="The page language the user chose; empty: the LMS's."
    )
    site_role = models.CharField(max_length=20, choices=SiteRole.choices, default=SiteRole.MEMBER)

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_site_admin(self) -> bool:
        return self.is_superuser or self.site_role == SiteRole.ADMIN


class Course(models.Model):
    """A course CAIPI serves, usually mirrored from an LMS context (a Moodle course)."""

    title = models.CharField(max_length=255)
    label = models.CharField(max_length=100, blank=True, help_text="Short name, e.g. CS101.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return f"{self.label} {self.title}".strip()


class Membership(models.Model):
    """One user's role in one course."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=CourseRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="membership_unique_user_course")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} in {self.course}"
