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
