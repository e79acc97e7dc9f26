"""The actions the prompts app registers with ``caipi.core.permissions``.

``model.use`` (which models each role may use) and ``course.view_usage`` are governance's;
the prompts app asks them by name, as it may not import governance.
"""

from __future__ import annotations

from caipi.core.permissions import MEMBERS, TEACHERS, register_course_action

TEMPLATE_RUN = register_course_action("template.run", roles=MEMBERS)
TEMPLATE_EDIT = register_course_action("template.edit", roles=TEACHERS)
COURSE_MANAGE_PROMPTS = register_course_action("course.manage_prompts", roles=TEACHERS)
MODEL_USE = "model.use"
COURSE_VIEW_USAGE = "course.view_usage"  # governance's: who sees a course's usage
