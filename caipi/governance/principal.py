"""Who is calling, resolved once and held in memory: the ``Principal`` and its model check.

A ``Principal`` is built by ``apikey_authenticate`` (API keys) or ``principal_for_user``
(session users, optionally in a course) from cached snapshots, so the gateway's hot path
never queries the database. Build principals only through these functions: they resolve
which models the user's roles may use (``role_models``), which a hand-built principal
would leave unrestricted.

Which role governs model access: the course role when the call is made in a course, else
the site role; site admins also get the admin role's models. A role with no
``RoleModelAccess`` row may use every model (open by default, so a fresh install works).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from caipi.core.errors import NotAuthenticated, PermissionDenied
from caipi.core.models import Membership, SiteRole, User
from caipi.governance.snapshot import VERSION, Snapshot, TTLCache

logger = logging.getLogger(__name__)

PRINCIPAL_TTL = 30.0


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``None`` model sets mean "no restriction from that source"."""

    user_id: int
    key_id: int | None
    username: str
    site_role: str
    allowed_models: frozenset[str] | None
    course_id: int | None
    course_role: str | None = None
    role_models: frozenset[str] | None = None
    # Outside a course (API keys, pages of no course): every course role the user holds
    # anywhere, so the role limits of each apply (see ``limit_roles``).
    held_roles: tuple[str, ...] = ()

    @property
    def roles(self) -> tuple[str, ...]:
        """The governing roles (see the module docstring), most specific first."""
        primary = self.course_role or self.site_role
        if self.site_role == SiteRole.ADMIN and primary != SiteRole.ADMIN:
            return (primary, SiteRole.ADMIN.value)
        return (primary,)

    @property
    def limit_roles(self) -> tuple[str, ...]:
        """The roles whose quota limits a call draws on.

        In a course: the governing roles. Outside one — an API-key call, a page of no
        course — also every course role the user holds in any course: a learner's key is
        held to the learner limits (each counted per user, so the strictest binds), the
        same person with the same limits on every path.
        """
        extra = tuple(role for role in self.held_roles if role not in self.roles)
        return self.roles + extra if self.course_id is None else self.roles


def principal_may_use_model(principal: Principal, model_name: str) -> bool:
    """True when both the key's allow-list and the principal's roles permit the model.

    Pure and in-memory (about a hundred nanoseconds): the role part was resolved from the
    cached model-access snapshot when the principal was built.
    """
    if principal.allowed_models is not None and model_name not in principal.allowed_models:
        return False
    return principal.role_models is None or model_name in principal.role_models


# --- model access snapshot ------------------------------------------------------------------


def _load_model_access() -> dict[str, frozenset[str]]:
    from caipi.governance.models import RoleModelAccess

    return {row.role: frozenset(row.model_names) for row in RoleModelAccess.objects.all()}


MODEL_ACCESS: Snapshot[dict[str, frozenset[str]]] = Snapshot(_load_model_access, ttl=60.0)


def role_models_for(
    roles: tuple[str, ...], access: dict[str, frozenset[str]]
) -> frozenset[str] | None:
    """The union of the roles' model sets; ``None`` when any role is unrestricted."""
    union: set[str] = set()
    for role in roles:
        if role not in access:
            return None
        union |= access[role]
    return frozenset(union)


# --- principals of session users ------------------------------------------------------------

_PRINCIPALS: TTLCache[tuple[int, int | None], Principal | str] = TTLCache(ttl=PRINCIPAL_TTL)


def _build_for_user(user_id: int, course_id: int | None) -> Principal | str:
    """The principal, or the refusal message when the user may not act in that course."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "unknown"
    course_role = None
    if course_id is not None:
        membership = Membership.objects.filter(user_id=user_id, course_id=course_id).first()
        if membership is None and not user.is_site_admin:
            return "not_member"
        course_role = membership.role if membership else None
    site_role = SiteRole.ADMIN.value if user.is_site_admin else user.site_role
    principal = Principal(
        user_id=user.pk,
        key_id=None,
        username=user.username,
        site_role=site_role,
        allowed_models=None,
        course_id=course_id,
        course_role=course_role,
        held_roles=held_course_roles(user.pk) if course_id is None else (),
    )
    return replace(principal, role_models=role_models_for(principal.roles, MODEL_ACCESS.get()))


def held_course_roles(user_id: int) -> tuple[str, ...]:
    """Every course role the user holds in any course, sorted (one query)."""
    roles = Membership.objects.filter(user_id=user_id).values_list("role", flat=True)
    return tuple(sorted(set(roles)))


def _unwrap(result: Principal | str) -> Principal:
    if result == "unknown":
        raise NotAuthenticated(
            "Your account is unknown or disabled.", extra={"code": "account_disabled"}
        )
    if result == "not_member":
        raise PermissionDenied(_("You are not a member of this course."))
    assert isinstance(result, Principal)
    return result


def principal_for_user(*, user_id: int, course_id: int | None = None) -> Principal:
    """The principal of a signed-in user, in a course or not; cached (no query when warm).

    Raises ``NotAuthenticated`` for an unknown or inactive user and ``PermissionDenied``
    when the user is neither a member of ``course_id`` nor a site admin.
    """
    version = VERSION.current()
    result = _PRINCIPALS.get((user_id, course_id), version)
    if result is None:
        result = _build_for_user(user_id, course_id)
        _PRINCIPALS.put((user_id, course_id), version, result)
    return _unwrap(result)


async def aprincipal_for_user(*, user_id: int, course_id: int | None = None) -> Principal:
    """Async twin of ``principal_for_user``: no thread hop when the cache is warm."""
    version = await VERSION.acurrent()
    result = _PRINCIPALS.get((user_id, course_id), version)
    if result is None:
        result = await sync_to_async(_build_for_user)(user_id, course_id)
        _PRINCIPALS.put((user_id, course_id), version, result)
    return _unwrap(result)


def principal_caches_clear() -> None:
    """Drop this process's cached principals and model access (tests, admin actions)."""
    _PRINCIPALS.clear()
    MODEL_ACCESS.clear()


def user_may_use_model(user: User, model_name: str, course_id: int | None) -> bool:
    """The model policy behind ``core.permissions`` (``model.use``) for a signed-in user."""
    try:
        principal = principal_for_user(user_id=user.pk, course_id=course_id)
    except (NotAuthenticated, PermissionDenied):
        return False
    return principal_may_use_model(principal, model_name)
