"""Which quota limits apply to a call, resolved from an in-memory snapshot of all limits.

The snapshot (every ``QuotaLimit`` plus each course's exempt roles) is rebuilt at most
once per governance change or minute, so resolving limits on the hot path costs a few
dictionary lookups and no query. Rules, for a principal calling ``model``:

* ``user``: the limit of that user, and limits without a user (each user);
* ``role``: limits naming one of the principal's roles (counted per user): in a course its
  governing roles; outside one (API keys) also every course role the user holds anywhere
  (``Principal.limit_roles``), so a learner's key is held to the learner limits;
* ``course`` / ``course_member``: only for calls in a course, unless the principal's course
  role is exempt there (``CourseSettings.exempt_roles``, staff by default) or is a site
  admin — the course as a whole, or each member separately;
* ``model``: limits naming the model (or every model), counted per user and model;
* ``key``: only for API-key calls — that key's own limits, and limits for every key.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from caipi.core.models import SiteRole
from caipi.governance.principal import Principal
from caipi.governance.snapshot import Snapshot

DEFAULT_EXEMPT = frozenset({"instructor", "teaching_assistant"})


@dataclass(frozen=True)
class LimitRule:
    """One ``QuotaLimit`` as the hot path sees it."""

    id: int
    scope: str
    metric: str
    window: str
    size: int
    label: str


@dataclass(frozen=True)
class LimitsSnapshot:
    rules: dict[tuple[str, object], tuple[LimitRule, ...]] = field(default_factory=dict)
    model_rules: tuple[tuple[str, LimitRule], ...] = ()
    exempt_roles: dict[int, frozenset[str]] = field(default_factory=dict)


def _subject(limit: object) -> object:
    scope = limit.scope  # type: ignore[attr-defined]
    return {
        "user": limit.user_id,  # type: ignore[attr-defined]
        "role": limit.role,  # type: ignore[attr-defined]
        "course": limit.course_id,  # type: ignore[attr-defined]
        "course_member": limit.course_id,  # type: ignore[attr-defined]
        "model": limit.model_name,  # type: ignore[attr-defined]
        "key": limit.key_id,  # type: ignore[attr-defined]
    }[scope]


def limits_load() -> LimitsSnapshot:
    """Read every limit and every course's exempt roles (two queries)."""
    from caipi.governance.models import CourseSettings, QuotaLimit

    rules: dict[tuple[str, object], list[LimitRule]] = defaultdict(list)
    model_rules = []
    for limit in QuotaLimit.objects.select_related("user", "course", "key"):
        rule = LimitRule(limit.pk, limit.scope, limit.metric, limit.window, limit.size, limit.label)
        rules[(limit.scope, _subject(limit))].append(rule)
        if limit.scope == "model":
            model_rules.append((limit.model_name, rule))
    exempt = {
        row["course_id"]: frozenset(row["exempt_roles"] or ())
        for row in CourseSettings.objects.values("course_id", "exempt_roles")
    }
    return LimitsSnapshot(
        rules={key: tuple(value) for key, value in rules.items()},
        model_rules=tuple(model_rules),
        exempt_roles=exempt,
    )


LIMITS: Snapshot[LimitsSnapshot] = Snapshot(limits_load, ttl=60.0)


def is_exempt(snapshot: LimitsSnapshot, principal: Principal) -> bool:
    """True when the principal is not held to the course's own budgets in its course."""
    if principal.site_role == SiteRole.ADMIN:
        return True
    exempt = snapshot.exempt_roles.get(principal.course_id or 0, DEFAULT_EXEMPT)
    return principal.course_role in exempt


def limits_applicable(
    snapshot: LimitsSnapshot, principal: Principal, model: str | None
) -> list[tuple[LimitRule, str]]:
    """The limits a call draws on, each with the subject its counter belongs to.

    ``model=None`` (the quota overview) includes the per-model limits of every model.
    """
    user = f"u{principal.user_id}"
    wanted: list[tuple[tuple[str, object], str]] = [
        (("user", principal.user_id), user),
        (("user", None), user),
        *((("role", role), user) for role in principal.limit_roles),
    ]
    if principal.course_id is not None and not is_exempt(snapshot, principal):
        course = f"c{principal.course_id}"
        for subject in (principal.course_id, None):
            wanted.append((("course", subject), course))
            wanted.append((("course_member", subject), f"{course}{user}"))
    if principal.key_id is not None:
        wanted += [
            (("key", principal.key_id), f"k{principal.key_id}"),
            (("key", None), f"k{principal.key_id}"),
        ]
    found = [(rule, counter) for key, counter in wanted for rule in snapshot.rules.get(key, ())]
    if model is not None:
        for name in (model, ""):
            found += [(rule, f"{user}m{model}") for rule in snapshot.rules.get(("model", name), ())]
    else:
        found += [(rule, f"{user}m{name}") for name, rule in snapshot.model_rules if name]
    return found
