"""The demo's data: one course with a lecturer, a teaching assistant and students, an admin,
and the local engine registered as a model endpoint. Every function is idempotent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from caipi.core.models import Course, CourseRole, Membership, SiteRole, User
from caipi.governance import selectors as governance_selectors
from caipi.governance import services as governance_services
from caipi.governance.models import LimitMetric, LimitScope, LimitWindow, QuotaLimit
from rag import services as rag_services

NOTES_DIR = Path(__file__).resolve().parent / "notes"
DEMO_COURSE = {"label": "ML101", "title": "Introduction to Machine Learning"}
DEMO_POLICY = """\
CAIPI demo usage policy

1. Questions you ask are sent only to the university's own servers.
2. They are not stored unless your course turns on conversation history.
3. Use the assistant for your studies; each student has a daily token budget.
"""
# (scope, role, metric, window, size): what the demo's students may spend.
DEMO_LIMITS = [
    (LimitScope.ROLE, CourseRole.LEARNER, LimitMetric.TOKENS, LimitWindow.DAY, 20_000),
    (LimitScope.ROLE, CourseRole.LEARNER, LimitMetric.REQUESTS, LimitWindow.MINUTE, 10),
]
DEMO_PEOPLE = [
    ("ada", "Ada", "Lovelace", CourseRole.INSTRUCTOR),
    ("grace", "Grace", "Hopper", CourseRole.TEACHING_ASSISTANT),
    ("bob", "Bob", "Student", CourseRole.LEARNER),
    ("carol", "Carol", "Student", CourseRole.LEARNER),
]


@dataclass(frozen=True)
class DemoSite:
    """What the demo created: the course and the admin's fresh password."""

    course: Course
    admin_username: str
    admin_password: str


@transaction.atomic
def demo_seed() -> DemoSite:
    """Create (or refresh) the demo course, its members and an admin with a new password."""
    course, _ = Course.objects.get_or_create(label=DEMO_COURSE["label"], defaults=DEMO_COURSE)
    for username, first, last, role in DEMO_PEOPLE:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "display_name": f"{first} {last}"},
        )
        Membership.objects.update_or_create(user=user, course=course, defaults={"role": role})
    admin, _ = User.objects.get_or_create(
        username="admin",
        defaults={"display_name": "Demo Admin", "email": "admin@localhost"},
    )
    password = secrets.token_urlsafe(9)
    admin.set_password(password)
    admin.is_staff = admin.is_superuser = True
    admin.site_role = SiteRole.ADMIN
    admin.save()
    _seed_governance(admin=admin)
    return DemoSite(course=course, admin_username="admin", admin_password=password)


def _seed_governance(*, admin: User) -> None:
    """Students' daily budget and a usage policy each user accepts on first access."""
    for scope, role, metric, window, size in DEMO_LIMITS:
        QuotaLimit.objects.get_or_create(
            scope=scope, role=role, metric=metric, window=window, defaults={"size": size}
        )
    if governance_selectors.policy_current() is None:
        governance_services.policy_publish(text=DEMO_POLICY, actor=admin)


def demo_notes() -> list[Path]:
    """The sample lecture notes shipped with the demo, in week order."""
    return sorted(NOTES_DIR.glob("*.md"))


def demo_index_notes(*, course: Course) -> list[str]:
    """Index the sample notes into the demo course (unchanged ones are skipped quickly), so
    the course assistant answers from them. Returns a line per file that failed."""
    files = [rag_services.Upload(name=path.name, data=path.read_bytes()) for path in demo_notes()]
    job = rag_services.documents_ingest_now(course=course, files=files)
    return [f"{f.name}: {f.error}" for f in job.files.all() if f.error]


DEMO_TEMPLATE = {
    "engine": "plain",
    "system_prompt": "You are the friendly tutor of the course {{ course.title }} "
    "({{ course.label }}). Address the student as {{ user.given_name }}. Be brief.",
    "user_prompt": "Explain {{ input.topic }} for a {{ input.level }} student, with one "
    "example.",
    "variables": [
        {"name": "topic", "kind": "short_text", "label": "Topic", "max_length": 120},
        {"name": "level", "kind": "choice", "label": "Level", "required": False,
         "choices": ["beginner", "advanced"], "default": "beginner"},
    ],
    "params": {"temperature": 0.3, "max_tokens": 200},
    "starters": ["Give me another example", "Quiz me on it"],
    "tests": [
        {"name": "Overfitting", "inputs": {"topic": "overfitting"},
         "checks": [{"kind": "length", "min": 20}]},
    ],
}  # fmt: skip


@transaction.atomic
def demo_seed_prompts(*, course: Course, model: str) -> None:
    """A published "Explain a concept" template in the demo course, once (on ``model``)."""
    from prompts import services as prompt_services
    from prompts.models import Template

    if Template.objects.filter(course=course).exists():
        return
    lecturer = User.objects.get(username=DEMO_PEOPLE[0][0])
    template = prompt_services.template_create(
        actor=lecturer,
        course=course,
        name="Explain a concept",
        description="Pick a topic of the course and get it explained at your level.",
        content={**DEMO_TEMPLATE, "model": model},
        note="Seeded by the demo",
    )
    prompt_services.template_publish(
        actor=lecturer, template=template, version=template.versions.get()
    )
