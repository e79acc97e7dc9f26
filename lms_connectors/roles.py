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
5. Launch and names-and-roles must agree (``effective_course_role``). Moodle 5.0 computes a
   launch's roles on the activity (``mod/lti:manage`` → Instructor) but the roster's on the
   course (``moodle/course:manageactivities`` → Instructor, else Learner), so a non-editing
   teacher launches as Instructor and is listed as Learner, and a site admin launches as
   Instructor + Administrator without being enrolled at all. The role of a user's latest
   launch therefore wins over the roster's, and a launch that carried an institution or
   system Administrator role keeps its membership when the roster does not list the user.
"""

from __future__ import annotations

from collections.abc import Iterable

from caipi.core.models import CourseRole

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"
PERSON = "http://purl.imsglobal.org/vocab/lis/v2/person"  # Moodle's NRPS admin role

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


def lms_admin_from_lti(roles: Iterable[str]) -> bool:
    """True when the roles name the person an institution or system Administrator."""
    admin_roles = {f"{prefix}#Administrator" for prefix in (INSTITUTION, SYSTEM, PERSON)}
    return any(role in admin_roles for role in roles)


def effective_course_role(
    *, roster_role: CourseRole | None, launch_role: str | None
) -> CourseRole | None:
    """The role a roster sync gives: the latest launch's when there was one (rule 5)."""
    if launch_role:
        return CourseRole(launch_role)
    return roster_role
