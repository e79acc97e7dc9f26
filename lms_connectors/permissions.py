"""The actions the LTI tool registers with ``caipi.core.permissions``."""

from __future__ import annotations

from caipi.core.permissions import TEACHERS, register_course_action

# The course's LMS link: its roster sync, placed activities and grades sent back.
COURSE_MANAGE_LMS_LINK = register_course_action("course.manage_lms_link", roles=TEACHERS)
# Placing CAIPI activities in the LMS course (LTI Deep Linking).
COURSE_PLACE_ACTIVITIES = register_course_action("course.place_activities", roles=TEACHERS)
