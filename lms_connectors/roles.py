"""Map LTI role URIs to a CAIPI course role.

Rules (LTI 1.3 core spec, role vocabularies):

1. Context (membership) roles decide when present; institution roles are only a fallback
   for a launch that carries no context role. System roles never grant a course role.
2. Within a group the strongest applicable role wins, except that the TeachingAssistant
   sub-role beats the Instructor principal role it comes with (the spec asks platforms
   to send both).
3. Administrator (context or institution) counts as Instructor of the course: the LMS
   lets them manage it. It does not make anyone a CAIPI site administrator.
4. Roles CAIPI does not know (Guest, Observer, None ...) give no course role: ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable

from caipi.core.models import CourseRole

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"

_TEACHING_ASSISTANT_SUB_ROLE = "Instructor#TeachingAssistant"

# Role name (the part after '#') → course role, strongest first.
_CONTEXT_ROLES: dict[str, CourseRole] = {
    "Instructor": CourseRole.INSTRUCTOR,
    "Administrator": CourseRole.INSTRUCTOR,
    "ContentDeveloper": CourseRole.INSTRUCTOR,
    "TeachingAssistant": CourseRole.TEACHING_ASSISTANT,
    "Mentor": CourseRole.TEACHING_ASSISTANT,
    "Learner": CourseRole.LEARNER,
    "Member": CourseRole.LEARNER,
}
_INSTITUTION_ROLES: dict[str, CourseRole] = {
    "Administrator": CourseRole.INSTRUCTOR,
    "Faculty": CourseRole.INSTRUCTOR,
    "Instructor": CourseRole.INSTRUCTOR,
    "Mentor": CourseRole.TEACHING_ASSISTANT,
    "Student": CourseRole.LEARNER,
    "Learner": CourseRole.LEARNER,
}
_STRENGTH = [CourseRole.INSTRUCTOR, CourseRole.TEACHING_ASSISTANT, CourseRole.LEARNER]


def course_role_from_lti(roles: Iterable[str]) -> CourseRole | None:
    """The course role the LTI ``roles`` claim grants, or None when it grants none."""
    context: list[str] = []
    institution: list[str] = []
    for role in roles:
        if role.startswith(MEMBERSHIP + "/") and role.endswith(_TEACHING_ASSISTANT_SUB_ROLE):
            return CourseRole.TEACHING_ASSISTANT
        if role.startswith(MEMBERSHIP + "#"):
            context.append(role.partition("#")[2])
        elif role.startswith(INSTITUTION + "#"):
            institution.append(role.partition("#")[2])
        elif "/" not in role and "#" not in role:
            context.append(role)  # simple names are context roles (LTI 1.3 §A.2.3.1)
    return _strongest(context, _CONTEXT_ROLES) or _strongest(institution, _INSTITUTION_ROLES)


def _strongest(names: list[str], table: dict[str, CourseRole]) -> CourseRole | None:
    granted = {table[name] for name in names if name in table}
    for role in _STRENGTH:
        if role in granted:
            return role
    return None
