"""What the prompts app needs from above, filled in by the layer that has it.

The prompts app knows templates, not engines: which models exist and how queued work
(test runs, batch runs) reaches a model are registered by the gateway at start-up
(``register_model_catalogue``, ``register_queue``). Without a catalogue every model name is
accepted (the run then fails with the gateway's "unknown model"); without a queue, work
stays queued until one is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

logger = logging.getLogger(__name__)

ModelCatalogue = Callable[[], Collection[str]]
_catalogue: ModelCatalogue | None = None


def register_model_catalogue(catalogue: ModelCatalogue | None) -> None:
    """Install ``catalogue() -> names of the chat models that exist``."""
    global _catalogue
    _catalogue = catalogue


def model_names() -> list[str]:
    """The chat models templates can name, sorted (empty when nothing is registered)."""
    return sorted(_catalogue()) if _catalogue is not None else []


def model_exists(name: str) -> bool:
    """True when the model is known, or when no catalogue is registered."""
    return _catalogue is None or name in _catalogue()


Enqueue = Callable[[int], None]
_queues: dict[str, Enqueue] = {}
TEST_RUN = "test_run"
BATCH_RUN = "batch_run"


def register_queue(kind: str, enqueue: Enqueue) -> None:
    """Install ``enqueue(row id)`` for ``kind`` (``TEST_RUN`` or ``BATCH_RUN``)."""
    _queues[kind] = enqueue


def queue_of(kind: str) -> Enqueue | None:
    """The enqueue function registered for ``kind`` (to restore it after replacing it)."""
    return _queues.get(kind)


def enqueue(kind: str, row_id: int) -> None:
    """Hand a queued test or batch run to whoever runs it (call after commit)."""
    runner = _queues.get(kind)
    if runner is None:
        logger.warning("no runner registered for %s %s; it stays queued", kind, row_id)
        return
    runner(row_id)


ContextProvider = Callable[..., dict[str, Any]]
_providers: dict[str, ContextProvider] = {}


def register_context_provider(name: str, provider: ContextProvider) -> None:
    """Install ``provider(*, course, user, request, inputs, version) -> partial context``.

    A provider returns any of ``{"course": {...}, "launch": {...}, "passages": [Passage]}``
    (course sections, activities and dates from the LMS; the launch's resource title and
    custom parameters; retrieved lecture-note passages). Providers are asked in the order
    they were registered; later values win.
    """
    _providers[name] = provider


def context_providers() -> list[ContextProvider]:
    return list(_providers.values())
