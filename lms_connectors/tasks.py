"""Periodic and on-demand roster syncs (names and roles), as Celery tasks that take ids."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from lms_connectors import selectors, services
from lms_connectors.lti.tool import LtiServiceError
from lms_connectors.models import LtiContext

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(LtiServiceError,),
    retry_backoff=60,
    max_retries=3,
    acks_late=True,
)
def roster_sync(self: Any, context_pk: int) -> None:
    """Sync one context's roster. Retries transient LMS failures; gives up on 4xx."""
    context = LtiContext.objects.select_related("platform", "course").filter(pk=context_pk).first()
    if context is None:
        return
    try:
        services.roster_sync(context=context)
    except LtiServiceError as exc:
        if not exc.retryable:
            logger.warning("LTI roster sync gave up context=%s: %s", context_pk, exc.message)
            return
        raise


@shared_task
def roster_sync_all() -> int:
    """Enqueue a sync for every context with a roster service (beat runs this)."""
    pks = list(selectors.contexts_with_roster().values_list("pk", flat=True))
    for pk in pks:
        roster_sync.delay(pk)
    return len(pks)
