"""Prompt templates: a course's templates, their immutable versions and the published pin,
test cases and test runs, student runs, and batch runs with their items.

A ``Template`` is the stable thing students see on the course page; every save adds a
``TemplateVersion`` (never changed afterwards). ``Template.published_version`` is the pin
that decides what students run, so publishing, rollback and unpublishing move the pin and
never edit a version. A template without a course is an entry of the site library.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from caipi.core.models import Course
from prompts.rendering import Engine


class Audience(models.TextChoices):
    """Who sees a published template on the course page."""

    LEARNERS = "learners", _("Students")
    STAFF = "staff", _("Course staff")


class TemplateState(models.TextChoices):
    """Where a template is; ``published`` exactly when it has a published version."""

    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class LibraryState(models.TextChoices):
    """For site-library templates (no course): proposed by a lecturer, approved by an admin."""

    NONE = "", _("Not in the library")
    PROPOSED = "proposed", _("Proposed")
    APPROVED = "approved", _("Approved")


class Template(models.Model):
    """A prompt template of one course (or of the site library when ``course`` is empty)."""

    course = models.ForeignKey(
        Course, null=True, blank=True, on_delete=models.CASCADE, related_name="prompt_templates"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.LEARNERS)
    state = models.CharField(
        max_length=20, choices=TemplateState.choices, default=TemplateState.DRAFT
    )
    published_version = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    library_state = models.CharField(
        max_length=20, choices=LibraryState.choices, default=LibraryState.NONE, blank=True
    )
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_published(self) -> bool:
        return self.state == TemplateState.PUBLISHED and self.published_version_id is not None

    @property
    def home(self) -> Course:
        """The course a course template runs in; ``ValueError`` for a library template,
        which runs nowhere until it is copied into a course."""
        if self.course is None:
            raise ValueError(f"template {self.pk} is a library template and has no course")
        return self.course


class TemplateVersion(models.Model):
    """One saved state of a template, immutable: a change is a new version.

    ``variables`` declares the student inputs (``prompts.variables``), ``params`` the
    generation parameters (temperature, top_p, max_tokens), ``starters`` suggested
    follow-up questions; ``use_notes`` asks for lecture-note retrieval (``notes_count``
    passages).
    """

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True)
    engine = models.CharField(
        max_length=10,
        choices=[(e.value, e.value) for e in Engine],
        default=Engine.PLAIN.value,
    )
    system_prompt = models.TextField(blank=True)
    user_prompt = models.TextField()
    variables = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    use_notes = models.BooleanField(default=False)
    notes_count = models.PositiveSmallIntegerField(default=5)
    starters = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="prompt_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert only: a saved version never changes (a change is a new version)."""
        if not self._state.adding:
            raise ValueError("Template versions are immutable; save a new version instead.")
        super().save(*args, **kwargs)

    def content(self) -> dict[str, Any]:
        """The fields that make up the version's behaviour (for diff and export)."""
        return {name: getattr(self, name) for name in CONTENT_FIELDS}


CONTENT_FIELDS = (
    "engine", "system_prompt", "user_prompt", "variables", "model", "params", "use_notes",
    "notes_count", "starters",
)  # fmt: skip


class TestCase(models.Model):
    """A sample run of a version (``inputs``) and the ``checks`` its answer must pass.

    Belongs to one version and is as immutable as it: a new version gets copies.
    """

    __test__ = False  # a model, not a pytest test class

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="tests")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=200)
    inputs = models.JSONField(default=dict, blank=True)
    checks = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["version", "position"]

    def __str__(self) -> str:
        return self.name


class TestRunStatus(models.TextChoices):
    """A test run's progress and verdict: green only when every case passed."""

    __test__ = False

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    PASSED = "passed", _("Passed")
    FAILED = "failed", _("Failed")
    ERROR = "error", _("Could not run")


class TestRun(models.Model):
    """One run of a version's test cases on the course's model, as queued work."""

    __test__ = False  # a model, not a pytest test class

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="test_runs")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=TestRunStatus.choices, default=TestRunStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"tests of {self.version} ({self.status}, {self.done}/{self.total})"

    @property
    def is_finished(self) -> bool:
        return self.status in (TestRunStatus.PASSED, TestRunStatus.FAILED, TestRunStatus.ERROR)

    @property
    def is_green(self) -> bool:
        return self.status == TestRunStatus.PASSED


class TestResult(models.Model):
    """One test case's answer in a run and how each check came out."""

    __test__ = False  # a model, not a pytest test class

    run = models.ForeignKey(TestRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(TestCase, null=True, on_delete=models.SET_NULL, related_name="+")
    case_name = models.CharField(max_length=200)
    answer = models.TextField(blank=True)
    checks = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "pk"]

    def __str__(self) -> str:
        return f"{self.case_name}: {'passed' if self.passed else 'failed'}"


class Run(models.Model):
    """A student's (or lecturer's) run of a published template: who, which version, when.

    Counts only: ``inputs`` and ``answer`` stay empty unless the course keeps history.
    """

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="runs")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="prompt_runs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="prompt_runs"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    inputs = models.JSONField(null=True, blank=True)
    answer = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["template", "created_at"])]

    def __str__(self) -> str:
        return f"run of {self.version} at {self.created_at:%Y-%m-%d %H:%M}"


class BatchStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Finished")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class BatchSource(models.TextChoices):
    CSV = "csv", _("CSV upload")
    ROSTER = "roster", _("Course roster")


class BatchRun(models.Model):
    """A lecturer's run of one version over many inputs (a CSV or the roster), as queued
    work with progress. Results are kept until ``purge_after``, then deleted."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="batches")
    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=10, choices=BatchSource.choices)
    status = models.CharField(
        max_length=20, choices=BatchStatus.choices, default=BatchStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"batch {self.pk} of {self.template} ({self.done}/{self.total}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (BatchStatus.SUCCEEDED, BatchStatus.FAILED, BatchStatus.CANCELLED)


class BatchItemStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class BatchItem(models.Model):
    """One row of a batch: its inputs (and student, for roster batches) and its answer."""

    batch = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    label = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    inputs = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=BatchItemStatus.choices, default=BatchItemStatus.PENDING
    )
    answer = models.TextField(blank=True)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="prompt_batch_item_unique")
        ]

    def __str__(self) -> str:
        return f"item {self.position} of batch {self.batch_id}"


class PromptSettings(models.Model):
    """Site-wide rules for templates, set by an admin (one row, ``PromptSettings.load()``)."""

    require_green_tests = models.BooleanField(
        default=False, help_text=_("Publish a version only after a green test run.")
    )
    judge_model = models.CharField(
        max_length=200, blank=True, help_text=_("The model that judges rubric checks.")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("prompt settings")
        verbose_name_plural = _("prompt settings")

    def __str__(self) -> str:
        return "Prompt settings"

    @classmethod
    def load(cls) -> PromptSettings:
        settings_row, _ = cls.objects.get_or_create(pk=1)
        return settings_row
