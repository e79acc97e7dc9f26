"""LTI 1.3 registrations and the mapping from LMS identifiers to CAIPI's users and courses.

A ``Platform`` is one registration of CAIPI in one LMS (issuer + client id); its
``Deployment`` rows are the deployment ids that LMS may launch with. ``LtiContext`` maps an
LMS course to a ``core.Course``; ``LtiIdentity`` maps the pseudonymous ``sub`` of an issuer
to a ``core.User``; ``LtiResourceLink`` remembers one placed activity (its target and, when
the LMS grades it, its AGS line item). ``ToolKey`` holds CAIPI's own signing keys.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.models import Course, User


class RegistrationMethod(models.TextChoices):
    """How a platform came to be registered."""

    DYNAMIC = "dynamic", _("Dynamic registration")
    MANUAL = "manual", _("Manual (admin pages)")
    DEVELOPMENT = "development", _("Built-in development platform")


class Platform(models.Model):
    """One LMS registration: what CAIPI needs to check its launches and call its services."""

    name = models.CharField(max_length=200, blank=True, help_text="Shown to admins only.")
    issuer = models.CharField(max_length=255, help_text="The platform's `iss`, e.g. its wwwroot.")
    client_id = models.CharField(max_length=255, help_text="Client id the platform gave CAIPI.")
    auth_login_url = models.URLField(max_length=500, help_text="OIDC authentication endpoint.")
    auth_token_url = models.URLField(max_length=500, help_text="OAuth2 token endpoint.")
    key_set_url = models.URLField(max_length=500, help_text="The platform's public JWKS URL.")
    auth_audience = models.CharField(
        max_length=500, blank=True, help_text="Audience for token requests; blank: the token URL."
    )
    method = models.CharField(
        max_length=20, choices=RegistrationMethod.choices, default=RegistrationMethod.MANUAL
    )
    product_family = models.CharField(max_length=100, blank=True, help_text="e.g. moodle.")
    is_active = models.BooleanField(default=True)
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when an admin retired this registration."
    )
    ws_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Moodle's address for web services; blank: the issuer (Moodle's wwwroot).",
    )
    ws_token_encrypted = models.TextField(
        blank=True, help_text="The Moodle web service token, encrypted (set it in the form)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_unique")
        ]
        ordering = ["issuer", "client_id"]

    def __str__(self) -> str:
        return self.name or f"{self.issuer} ({self.client_id})"

    @property
    def ws_base_url(self) -> str:
        return (self.ws_url or self.issuer).rstrip("/")

    @property
    def ws_token(self) -> str:
        """The decrypted web service token ('' when unset or undecryptable)."""
        from lms_connectors.keys import secret_decrypt

        if not self.ws_token_encrypted:
            return ""
        return secret_decrypt(self.ws_token_encrypted) or ""

    @property
    def is_pending(self) -> bool:
        """Registered, neither activated nor retired: waiting for an admin."""
        return not self.is_active and self.retired_at is None

    @property
    def status(self) -> str:
        """``active``, ``pending`` or ``retired``, for pages and refusals."""
        if self.retired_at is not None:
            return "retired"
        return "active" if self.is_active else "pending"


class Deployment(models.Model):
    """A deployment id a platform may launch with (one per tool placement in Moodle)."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "deployment_id"], name="lti_deployment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} / {self.deployment_id}"


class ToolKey(models.Model):
    """One of CAIPI's RSA signing keys. The private key is encrypted (see ``keys``).

    Exactly one key is active (signs); retired keys stay published in the JWKS until
    their grace period ends, so tokens signed just before a rotation still verify.
    """

    kid = models.CharField(max_length=100, unique=True)
    public_pem = models.TextField()
    private_pem_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kid} ({'active' if self.is_active else 'retired'})"

    @property
    def is_active(self) -> bool:
        return self.retired_at is None

    def published_at(self, *, grace_seconds: int) -> bool:
        """True while this key belongs in the JWKS: active, or retired within the grace."""
        if self.retired_at is None:
            return True
        return (timezone.now() - self.retired_at).total_seconds() < grace_seconds


class LtiContext(models.Model):
    """An LMS course (LTI context), mirrored as one CAIPI course.

    Keyed by issuer + context id, not by registration: a course stays one course whichever
    registration (client id) of its LMS it arrives through. ``platform`` is the registration
    of the latest launch, whose credentials the roster sync uses.
    """

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="contexts")
    issuer = models.CharField(max_length=255)
    context_id = models.CharField(max_length=255)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lti_contexts")
    memberships_url = models.URLField(max_length=500, blank=True, help_text="NRPS endpoint.")
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "context_id"], name="lti_context_unique")
        ]

    def __str__(self) -> str:
        return f"{self.course} @ {self.platform}"


class LtiIdentity(models.Model):
    """The pseudonymous LMS user (``sub`` of an issuer) behind a CAIPI user.

    Keyed by issuer, not by registration: the spec makes ``sub`` stable per issuer.
    """

    issuer = models.CharField(max_length=255)
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="lti_identities")
    created_at = models.DateTimeField(auto_now_add=True)
    last_launch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "sub"], name="lti_identity_unique")
        ]
        verbose_name_plural = "LTI identities"

    def __str__(self) -> str:
        return f"{self.user.username} @ {self.issuer}"


class LtiResourceLink(models.Model):
    """One placed CAIPI activity in an LMS course: what it opens and where its grades go."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="links")
    resource_link_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    target = models.CharField(max_length=200, blank=True, help_text="e.g. assistant, prompt:12.")
    lineitem_url = models.URLField(max_length=500, blank=True, help_text="AGS line item.")
    ags_scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["context", "resource_link_id"], name="lti_resource_link_unique"
            )
        ]

    def __str__(self) -> str:
        return self.title or self.resource_link_id

    @property
    def accepts_scores(self) -> bool:
        return bool(self.lineitem_url)


class LtiLaunchRole(models.Model):
    """The course role a user's latest launch into a context established.

    Moodle computes launch roles on the activity (``mod/lti:manage``) but names-and-roles
    roles on the course (``moodle/course:manageactivities``), so a non-editing teacher is
    Instructor in one and Learner in the other; a site admin who is not enrolled launches
    as Instructor and is absent from the roster. The roster sync reads this row so that
    both sources give the same CAIPI role (see ``roles``).
    """

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="launch_roles")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="lti_launch_roles")
    role = models.CharField(max_length=20)
    lms_admin = models.BooleanField(
        default=False, help_text="The launch carried an institution or system Administrator role."
    )
    launched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["context", "user"], name="lti_launch_role_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.context_id}: {self.role}"


class RegistrationInvite(models.Model):
    """A one-time, expiring registration URL an admin generated (``/lti/register/<token>/``).

    Only the token's SHA-256 is stored; the URL is shown once. Dynamic registration from
    an LMS host that is not in CAIPI_LTI_TRUSTED_ISSUERS must start from one of these.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activate = models.BooleanField(
        default=False, help_text="Activate the registration at once instead of leaving it pending."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    platform = models.ForeignKey(
        Platform, on_delete=models.SET_NULL, null=True, blank=True, related_name="invites"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"registration URL of {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()
