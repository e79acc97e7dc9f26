"""Governance data: API keys, model access per role, quota limits, usage, privacy and audit.

Model names (``model_name``) are plain strings, the names clients send in ``"model"``, so
this app does not depend on ``deploy``'s tables.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from caipi.core.models import Course, CourseRole, SiteRole, User


class GovernedRole(models.TextChoices):
    """Every role a rule can name: the course roles and the site roles together."""

    LEARNER = CourseRole.LEARNER.value, "Learner (in a course)"
    TEACHING_ASSISTANT = CourseRole.TEACHING_ASSISTANT.value, "Teaching assistant (in a course)"
    INSTRUCTOR = CourseRole.INSTRUCTOR.value, "Instructor (in a course)"
    MEMBER = SiteRole.MEMBER.value, "Member (outside a course)"
    API_USER = SiteRole.API_USER.value, "API user"
    ADMIN = SiteRole.ADMIN.value, "Administrator"


class ApiKey(models.Model):
    """A personal key for the ``/v1`` API. Only a keyed hash of the secret is stored.

    The visible ``prefix`` identifies the key in lists and logs; the full key is shown once.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    allowed_models = models.JSONField(
        null=True, blank=True, help_text="Model names this key may use; empty means all."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"caipi-{self.prefix}-… ({self.user})"

    @property
    def is_active(self) -> bool:
        expired = self.expires_at is not None and self.expires_at <= timezone.now()
        return self.revoked_at is None and not expired


class RoleModelAccess(models.Model):
    """Which models one role may use. A role without a row may use every model."""

    role = models.CharField(max_length=20, choices=GovernedRole.choices, unique=True)
    model_names = models.JSONField(
        default=list, blank=True, help_text='Model names, e.g. ["llama-8b"].'
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "model access for a role"
        verbose_name_plural = "model access per role"

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {', '.join(self.model_names) or 'no model'}"


class LimitScope(models.TextChoices):
    """Whom a limit counts: the subject whose counter a call draws on."""

    USER = "user", "Each user (or one user)"
    ROLE = "role", "Each user with a role"
    COURSE = "course", "A course as a whole"
    COURSE_MEMBER = "course_member", "Each member of a course"
    MODEL = "model", "Each user on a model"
    KEY = "key", "An API key (or each key)"


class LimitMetric(models.TextChoices):
    TOKENS = "tokens", "tokens"
    INPUT_TOKENS = "input_tokens", "input tokens"
    OUTPUT_TOKENS = "output_tokens", "output tokens"
    REQUESTS = "requests", "requests"


class LimitWindow(models.TextChoices):
    """Fixed windows aligned to UTC: the minute, the day from midnight, the month from the 1st."""

    MINUTE = "minute", "per minute"
    DAY = "day", "per day"
    MONTH = "month", "per month"


class ManagedBy(models.TextChoices):
    ADMIN = "admin", "Administrator"
    COURSE = "course", "Course staff"


class QuotaLimit(models.Model):
    """One limit: at most ``size`` of ``metric`` per ``window`` for the subjects of ``scope``.

    An empty subject field means "every": a ``user`` limit without a user applies to each
    user. Every applicable limit is enforced; the tightest one refuses first. Limits with
    ``managed_by=admin`` on a course are the ceiling for the budget course staff may set.
    """

    scope = models.CharField(max_length=20, choices=LimitScope.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    role = models.CharField(max_length=20, choices=GovernedRole.choices, blank=True)
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.CASCADE)
    model_name = models.CharField(max_length=200, blank=True)
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE)
    metric = models.CharField(max_length=20, choices=LimitMetric.choices)
    window = models.CharField(max_length=10, choices=LimitWindow.choices)
    size = models.PositiveBigIntegerField()
    managed_by = models.CharField(max_length=10, choices=ManagedBy.choices, default=ManagedBy.ADMIN)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "metric", "window"]

    def __str__(self) -> str:
        return f"{self.label}: {self.size}"

    @property
    def label(self) -> str:
        """A human name such as "course ML101 tokens per day"."""
        subject = {
            LimitScope.USER: f"user {self.user}" if self.user_id else "user",
            LimitScope.ROLE: self.role or "role",
            LimitScope.COURSE: f"course {self.course.label or self.course_id}"
            if self.course is not None
            else "course",
            LimitScope.COURSE_MEMBER: "course member",
            LimitScope.MODEL: f"user on model {self.model_name}"
            if self.model_name
            else "user per model",
            LimitScope.KEY: f"key {self.key.prefix}" if self.key is not None else "key",
        }[LimitScope(self.scope)]
        return f"{subject} {LimitMetric(self.metric).label} {LimitWindow(self.window).label}"


class Outcome(models.TextChoices):
    OK = "ok", "completed"
    CLIENT_ERROR = "client_error", "refused (bad request)"
    RATE_LIMITED = "rate_limited", "refused (quota)"
    UPSTREAM_ERROR = "upstream_error", "engine failed"
    CANCELLED = "cancelled", "cancelled by the client"


class UsageRecord(models.Model):
    """One call: who, where, which model, how many tokens, how long. Never the text."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    key_id = models.BigIntegerField(null=True, blank=True)
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL)
    role = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=200)
    endpoint_id = models.BigIntegerField(null=True, blank=True)
    template_version_id = models.BigIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.OK)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["course", "created_at"]),
            models.Index(fields=["user", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.model} {self.total_tokens} tokens"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _default_exempt_roles() -> list[str]:
    return [CourseRole.INSTRUCTOR.value, CourseRole.TEACHING_ASSISTANT.value]


class CourseSettings(models.Model):
    """A course's governance choices. Privacy by default: conversations are not kept."""

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="governance")
    keep_conversations = models.BooleanField(default=False)
    retention_days = models.PositiveIntegerField(default=30)
    exempt_roles = models.JSONField(
        default=_default_exempt_roles,
        blank=True,
        help_text="Course roles not held to the course's own budgets (site limits still apply).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "course settings"
        verbose_name_plural = "course settings"

    def __str__(self) -> str:
        return f"Settings of {self.course}"


class Conversation(models.Model):
    """A kept conversation; only ever created in a course with ``keep_conversations`` on."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Conversation {self.pk} of {self.user} in {self.course}"


class Message(models.Model):
    """One turn of a kept conversation."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=20)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"


class PolicyVersion(models.Model):
    """One version of the usage policy. The newest published one is the one users accept."""

    version = models.PositiveIntegerField(unique=True)
    text = models.TextField()
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Usage policy v{self.version}"


class PolicyAcceptance(models.Model):
    """A user accepted one policy version, at a time, through a channel (web, API key)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_acceptances"
    )
    policy = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="acceptances")
    accepted_at = models.DateTimeField(auto_now_add=True)
    channel = models.CharField(max_length=20, default="web")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "policy"], name="policy_accept_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} accepted v{self.policy.version}"


class AuditEntry(models.Model):
    """One administrative change: who did what to which object, with the values before and after."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=100, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target_repr}"


class DataSubject(User):
    """A user seen as the subject of data requests (export, deletion) in the admin."""

    class Meta:
        proxy = True
        verbose_name = "data request (user)"
        verbose_name_plural = "data requests (users)"
