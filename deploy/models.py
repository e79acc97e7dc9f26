"""Models CAIPI serves and the engine endpoints that serve them."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models


def validate_endpoint_url(value: str) -> None:
    """An http(s) URL with a host; single-label hosts such as ``gpu1`` are fine."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL with a host name.")
    try:
        _ = parts.port
    except ValueError:
        raise ValidationError("The port of this URL is not a number.") from None


class ModelKind(models.TextChoices):
    """What API a model answers: chat, plain completions, embeddings or reranking (vLLM's
    score API, ``/v1/rerank``; the course assistant uses one when the admin adds it)."""

    CHAT = "chat", "Chat"
    COMPLETION = "completion", "Completion"
    EMBEDDING = "embedding", "Embedding"
    RERANK = "rerank", "Rerank (score)"


class EndpointState(models.TextChoices):
    """Where an endpoint is in its life; only ``ready`` endpoints take new calls.

    ``sleeping``: the engine runs but sleeps (vLLM's sleep mode: weights offloaded or
    dropped, KV cache freed). The router sends it nothing; a call for its model waits in
    the gateway's queue, which wakes it (``deploy.services.endpoint_wake``).
    """

    STARTING = "starting", "Starting"
    READY = "ready", "Ready"
    SLEEPING = "sleeping", "Sleeping"
    DRAINING = "draining", "Draining"
    FAILED = "failed", "Failed"


class Model(models.Model):
    """A model clients can ask for by its public ``name``.

    ``served_name`` is what the engine calls it (vLLM's ``--served-model-name``); the gateway
    rewrites one into the other. ``default_params`` fill request fields the client left out.
    """

    name = models.CharField(max_length=200, unique=True, help_text="Public name clients use.")
    served_name = models.CharField(max_length=200, help_text="Name the engine serves it under.")
    kind = models.CharField(max_length=20, choices=ModelKind.choices, default=ModelKind.CHAT)
    default_params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    """One engine URL serving a model, e.g. ``http://gpu1:8000``.

    ``token`` is sent upstream as a bearer token and never shown back in lists. ``weight``
    scales the share of traffic the router gives this endpoint relative to its peers.
    """

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="endpoints")
    url = models.CharField(max_length=500, validators=[validate_endpoint_url])
    weight = models.PositiveIntegerField(default=1)
    token = models.CharField(max_length=500, blank=True)
    health_path = models.CharField(
        max_length=200,
        default="/health",
        help_text="Path that answers 200 when the engine can serve: /health for vLLM; "
        "llama.cpp's server has none, so CAIPI uses /openapi.json there.",
    )
    state = models.CharField(
        max_length=20, choices=EndpointState.choices, default=EndpointState.READY
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "url"], name="endpoint_unique_model_url"),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="endpoint_weight_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} @ {self.url}"

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash, ready to have ``/v1/...`` appended."""
        return self.url.rstrip("/")

    @property
    def takes_calls(self) -> bool:
        return self.state == EndpointState.READY


class EngineKind(models.TextChoices):
    """Which server a deployment runs: vLLM on GPU servers, llama.cpp for the demo's small
    model on CPU, or CAIPI's vLLM simulator for tests and demos."""

    VLLM = "vllm", "vLLM"
    LLAMACPP = "llamacpp", "llama.cpp"
    SIMULATOR = "simulator", "Simulator"


class LauncherKind(models.TextChoices):
    """Where a deployment's instances run; one module in ``deploy/launchers/`` each."""

    LOCAL = "local", "Local process"
    SLURM = "slurm", "Slurm"
    DOCKER = "docker", "Docker"
    KUBERNETES = "kubernetes", "Kubernetes"


class Deployment(models.Model):
    """The deployment spec of one model: which engine, where, how many, how it scales.

    ``engine_args`` holds the engine's arguments (vLLM: ``model_path``,
    ``tensor_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``,
    ``quantization``, ``extra_args``; the simulator: ``options``), ``target`` the launcher's
    (local: ``gpus``, ``ports``; Slurm: ``partition``, ``time_limit_minutes``...), and
    ``scaling`` the autoscaler's rules (see ``deploy.autoscale.Rules``). Validated by
    ``deploy.specs`` before it is saved. ``start_failures``/``next_start_at`` hold the
    restart back-off after instances that crashed or never became healthy.
    """

    model = models.OneToOneField(Model, on_delete=models.CASCADE, related_name="deployment")
    engine = models.CharField(max_length=20, choices=EngineKind.choices)
    engine_args = models.JSONField(default=dict, blank=True)
    gpus_per_instance = models.PositiveIntegerField(default=0)
    launcher = models.CharField(max_length=20, choices=LauncherKind.choices)
    target = models.JSONField(default=dict, blank=True)
    min_instances = models.PositiveIntegerField(default=0)
    max_instances = models.PositiveIntegerField(default=1)
    scaling = models.JSONField(default=dict, blank=True)
    idle_seconds = models.PositiveIntegerField(
        default=900, help_text="Seconds without a call before an instance sleeps or stops."
    )
    sleep_level = models.PositiveSmallIntegerField(
        default=0,
        help_text="0: idle instances stop; 1 or 2: they enter vLLM's sleep mode at that level.",
    )
    startup_timeout = models.PositiveIntegerField(
        default=600, help_text="Seconds an instance may take to answer its health path."
    )
    warm_windows = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    start_failures = models.PositiveIntegerField(default=0)
    next_start_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_instances__gte=models.F("min_instances")),
                name="deployment_max_gte_min",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} ({self.engine} via {self.launcher})"


class InstanceState(models.TextChoices):
    """An engine instance's life: starting → ready (→ sleeping) → draining → stopped; or
    failed (crashed, or not healthy within the start-up timeout)."""

    STARTING = "starting", "Starting"
    READY = "ready", "Ready"
    SLEEPING = "sleeping", "Sleeping"
    DRAINING = "draining", "Draining"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


LIVE_INSTANCE_STATES = (
    InstanceState.STARTING,
    InstanceState.READY,
    InstanceState.SLEEPING,
    InstanceState.DRAINING,
)


class Instance(models.Model):
    """One engine instance the reconciler started through a launcher.

    ``handle`` is what the launcher needs to find it again (local: pid, port, log path;
    Slurm: job id), ``endpoint`` the row the router sends calls to (created once the
    instance's URL is known), ``error`` why it failed, with the last lines of its log.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="instances")
    endpoint = models.OneToOneField(
        Endpoint, on_delete=models.SET_NULL, null=True, blank=True, related_name="instance"
    )
    state = models.CharField(
        max_length=20, choices=InstanceState.choices, default=InstanceState.STARTING
    )
    launcher = models.CharField(max_length=20, choices=LauncherKind.choices)
    handle = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=500, blank=True)
    gpus = models.JSONField(default=list, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    spec_hash = models.CharField(
        max_length=64,
        blank=True,
        help_text="Digest of the spec it was started from; a changed spec rolls it over.",
    )
    retiring = models.BooleanField(
        default=False,
        help_text="Near its time limit (Slurm) or started from an older spec: a successor "
        "was started; it drains once the successor is ready.",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    drain_started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deployment_id", "id"]
        indexes = [models.Index(fields=["state"], name="instance_state_idx")]

    def __str__(self) -> str:
        return f"instance {self.pk} of {self.deployment.model.name} ({self.state})"

    @property
    def live(self) -> bool:
        return self.state in LIVE_INSTANCE_STATES


class ScalingDecision(models.Model):
    """One change of a deployment's desired instance count, with the reason and the signals
    it was decided on (engine queue, queue time, KV-cache use, CAIPI's waiting calls)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="decisions")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    current = models.PositiveIntegerField()
    desired = models.PositiveIntegerField()
    reason = models.CharField(max_length=300)
    signals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.deployment.model.name}: {self.current} → {self.desired} ({self.reason})"


class CalendarWarmWindow(models.Model):
    """A time a course's model should be awake, taken from the course's LMS calendar: from a
    lead time before an event (a lecture, an assignment's due date, a quiz) to its end. The
    reconciler keeps at least one instance of the model up inside it, as inside one of the
    deployment's own ``warm_windows``. Replaced per course by each calendar refresh."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="calendar_windows")
    course = models.ForeignKey("core.Course", on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    event_id = models.BigIntegerField()
    event_name = models.CharField(max_length=300)
    event_kind = models.CharField(max_length=40, blank=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return f"{self.model.name} for {self.event_name} ({self.starts_at:%Y-%m-%d %H:%M})"
