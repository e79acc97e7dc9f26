"""The actions the gateway registers with ``caipi.core.permissions``."""

from __future__ import annotations

from caipi.core.permissions import MEMBERS, register_course_action

COURSE_USE_ASSISTANT = register_course_action("course.use_assistant", roles=MEMBERS)
