"""Connects the prompts app to the rest at start-up: it registers, here, what prompts and
lms_connectors offer registries for (they must not import the gateway or each other).

* the chat models that exist (``prompts.registry.register_model_catalogue``);
* where test runs and batch runs go (the model's Celery queue);
* the LMS's data for templates: the course's placed activities and, from the user's
  latest launch into the course, the resource link title and custom parameters;
* the lecture-note passages of templates that opt into retrieval, with their citations
  (``caipi/gateway/prompt_notes.py``);
* the course page's cards: one per published template a student may run;
* the deep-linking target ``prompt:<id>`` (``lms_connectors.targets``): each published
  template can be placed; a placement opens the run form; in a copied course it adopts
  the source template's published version, so the placement keeps working.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connections
from django.urls import reverse

from caipi.core import navigation
from caipi.core.errors import ApplicationError
from caipi.core.models import Course
from caipi.core.permissions import COURSE_VIEW, can
from caipi.gateway.prompt_notes import notes_context
from lms_connectors import claims, targets
from prompts import cache as prompt_cache
from prompts import registry
from prompts.models import Template, TemplateState

logger = logging.getLogger(__name__)


def _chat_models() -> list[str]:
    from deploy.models import Model, ModelKind

    return list(Model.objects.filter(kind=ModelKind.CHAT).values_list("name", flat=True))


_background: list[threading.Thread] = []


def _in_background(task: Any, row_id: int) -> None:
    """Without a broker (the embedded demo), run the task in a thread of this process: the
    request answers 202 at once and the page shows progress, as with a worker. The thread
    closes its database connection when done."""

    def run() -> None:
        try:
            task.apply(args=[row_id])
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=f"prompt-work-{row_id}", daemon=True)
    _background.append(thread)
    thread.start()


def background_wait(timeout: float = 60.0) -> None:
    """Wait for work started without a broker (tests; a clean shutdown)."""
    while _background:
        _background.pop().join(timeout)


def _enqueue(kind: str) -> Any:
    def enqueue(row_id: int) -> None:
        from caipi.gateway import tasks
        from caipi.gateway.prompt_work import work_enqueue
        from prompts.models import BatchRun, TestRun

        if kind == registry.TEST_RUN:
            model = TestRun.objects.values_list("version__model", flat=True).get(pk=row_id)
            task = tasks.run_prompt_tests
        else:
            model = BatchRun.objects.values_list("version__model", flat=True).get(pk=row_id)
            task = tasks.run_prompt_batch
        if settings.CELERY_TASK_ALWAYS_EAGER:
            _in_background(task, row_id)
        else:
            work_enqueue(task, row_id, model)

    return enqueue


def _launch_data(course: Course, request: Any) -> dict[str, Any]:
    """The resource title and custom parameters of the user's newest launch into ``course``."""
    if request is None or not hasattr(request, "session"):
        return {}
    from lms_connectors.errors import LtiRefused
    from lms_connectors.lti.launch import launch_restore
    from lms_connectors.models import LtiContext
    from lms_connectors.views import SESSION_LAUNCHES

    launch_ids = list(request.session.get(SESSION_LAUNCHES, []))
    if not launch_ids:
        return {}
    contexts = set(LtiContext.objects.filter(course=course).values_list("context_id", flat=True))
    for launch_id in reversed(launch_ids):
        try:
            launch = launch_restore(request=request, launch_id=launch_id)
        except LtiRefused:  # expired launches are normal; the run goes on without them
            logger.debug("launch %s expired", launch_id)
            continue
        if (launch.claims.get(claims.CONTEXT) or {}).get("id") not in contexts:
            continue
        custom = {
            str(key): str(value)[:500]
            for key, value in (launch.claims.get(claims.CUSTOM) or {}).items()
            if key != claims.CUSTOM_TARGET and registry_name_ok(str(key))
        }
        title = (launch.claims.get(claims.RESOURCE_LINK) or {}).get("title") or ""
        return {"resource_title": str(title)[:255], "custom": custom}
    return {}


def registry_name_ok(key: str) -> bool:
    from prompts.variables import NAME_RE

    return bool(NAME_RE.match(key))


def lms_context(*, course: Course, user: Any, request: Any, **_: Any) -> dict[str, Any]:
    """Course data the LMS told CAIPI (until the Moodle web services client lands: the
    titles of placed CAIPI activities) and the launch's data."""
    return {"course": _course_data(course.pk), "launch": _launch_data(course, request)}


def _course_data(course_id: int) -> dict[str, Any]:
    """The course's LMS data, cached briefly (it changes when activities are placed)."""
    from lms_connectors.models import LtiResourceLink

    def load() -> dict[str, Any]:
        titles = LtiResourceLink.objects.filter(context__course_id=course_id).exclude(title="")
        ordered = titles.order_by("created_at").values_list("title", flat=True)
        return {"activities": list(dict.fromkeys(ordered))}

    return dict(prompt_cache.course_data.get_or_load(course_id, load))


def _resolve(course: Course, argument: str) -> str | None:
    if not argument.isdigit():
        return None
    template = Template.objects.filter(pk=int(argument)).first()
    if template is None or template.course_id is None:
        return None
    if template.course_id != course.pk:
        from prompts.services import template_adopt

        try:
            template = template_adopt(source=template, course=course)
        except ApplicationError:
            return None
    return reverse("prompt_run_page", kwargs={"template_id": template.pk})


def _choices(course: Course) -> list[targets.TargetChoice]:
    published = Template.objects.filter(course=course, state=TemplateState.PUBLISHED)
    return [
        targets.TargetChoice(f"prompt:{t.pk}", t.name, t.description[:200])
        for t in published.exclude(published_version=None)
    ]


def _prompt_cards(user: Any, course: Course) -> list[navigation.Shown]:
    """One card per published template the user may run in the course (students' view;
    staff manage them through the "Prompt templates" section)."""
    from prompts.permissions import COURSE_MANAGE_PROMPTS
    from prompts.selectors import template_list_for_course

    if not can(user, COURSE_VIEW, course) or can(user, COURSE_MANAGE_PROMPTS, course):
        return []
    return [
        navigation.Shown(
            title=template.name,
            url=reverse("prompt_run_page", kwargs={"template_id": template.pk}),
            description=template.description[:160],
        )
        for template in template_list_for_course(user=user, course=course)
    ]


def connect() -> None:
    """Register everything above (GatewayConfig.ready)."""
    navigation.register_course_cards(
        navigation.CourseCards(key="prompt-cards", cards=_prompt_cards, order=5)
    )
    registry.register_model_catalogue(_chat_models)
    registry.register_queue(registry.TEST_RUN, _enqueue(registry.TEST_RUN))
    registry.register_queue(registry.BATCH_RUN, _enqueue(registry.BATCH_RUN))
    registry.register_context_provider("lms", lms_context)
    registry.register_context_provider("notes", notes_context)
    targets.register(
        targets.TargetKind(
            kind="prompt", label="Published prompt", resolve=_resolve, choices=_choices
        )
    )
