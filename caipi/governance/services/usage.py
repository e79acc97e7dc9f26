"""Usage accounting: one ``UsageRecord`` per call, written in batches off the hot path.

``usage_record(**fields)`` appends a dict to an in-process deque (about a microsecond,
no I/O); a daemon thread writes the buffer with one ``executemany`` every
``GOVERNANCE_USAGE_FLUSH_SECONDS`` (0: no thread — call ``usage_flush()`` yourself, as
tests do). Chosen over a Redis list drained by Celery because an RPUSH costs a network
round trip (~50-100 µs) on every call and a broker hop, while a deque append costs ~1 µs;
the price is that a crashed process loses at most one flush interval of records; a clean
shutdown flushes (``usage_flush_at_shutdown``: the ASGI lifespan, and ``atexit``).
Records never contain prompt or answer text: unknown fields are dropped.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

FIELDS = frozenset(
    {
        "user_id", "key_id", "course_id", "model", "endpoint_id", "prompt_tokens",
        "completion_tokens", "ttft_ms", "duration_ms", "outcome", "template_version_id", "role",
    }
)  # fmt: skip
MAX_BUFFER = 100_000
BATCH = 1000

_buffer: deque[dict[str, Any]] = deque(maxlen=MAX_BUFFER)
_flush_lock = threading.Lock()
_thread: threading.Thread | None = None


def usage_record(**fields: Any) -> None:
    """Queue one call's usage; never blocks and never raises for unknown fields (dropped).

    Fields: user_id, key_id, course_id, model, endpoint_id, prompt_tokens,
    completion_tokens, ttft_ms, duration_ms, outcome, template_version_id=None, and
    optionally role (else derived from the membership at flush time).
    """
    if len(_buffer) == MAX_BUFFER:
        logger.warning("usage buffer full: the oldest record is dropped")
    _buffer.append(
        {name: value for name, value in fields.items() if name in FIELDS} | {"at": time.time()}
    )
    if _thread is None:
        _start_flusher()


def _start_flusher() -> None:
    global _thread
    interval = float(getattr(settings, "GOVERNANCE_USAGE_FLUSH_SECONDS", 1.0))
    with _flush_lock:
        if _thread is not None or interval <= 0:
            return
        _thread = threading.Thread(
            target=_flush_forever, args=(interval,), name="usage-flush", daemon=True
        )
        _thread.start()


def _flush_forever(interval: float) -> None:
    failing = False
    while True:
        time.sleep(interval)
        try:
            usage_flush()
            failing = False
        except Exception as exc:  # keep flushing; the records were re-queued
            if not failing:  # once per streak, not once a second
                logger.warning("usage flush failed (%s); retrying", type(exc).__name__)
            failing = True
        try:
            close_old_connections()
        except Exception:  # e.g. database access blocked in a test run
            logger.debug("could not close old connections", exc_info=True)


def _take(limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while _buffer and len(items) < limit:
        items.append(_buffer.popleft())
    return items


def usage_flush() -> int:
    """Write every queued record now; returns how many. Re-queues a batch that failed."""
    written = 0
    with _flush_lock:
        while batch := _take(BATCH):
            try:
                _write(batch)
            except Exception:
                _buffer.extendleft(reversed(batch))
                raise
            written += len(batch)
    return written


def _roles(batch: list[dict[str, Any]]) -> dict[tuple[Any, Any], str]:
    from caipi.core.models import Membership, User

    users = {item["user_id"] for item in batch if item.get("user_id")}
    roles: dict[tuple[Any, Any], str] = {
        (pk, None): role
        for pk, role in User.objects.filter(pk__in=users).values_list("pk", "site_role")
    }
    courses = {item["course_id"] for item in batch if item.get("course_id")}
    memberships = Membership.objects.filter(user_id__in=users, course_id__in=courses)
    for user_id, course_id, role in memberships.values_list("user_id", "course_id", "role"):
        roles[(user_id, course_id)] = role
    return roles


def _write(batch: list[dict[str, Any]]) -> None:
    """Insert the batch with one prepared ``INSERT`` (``executemany``) in one transaction.

    Plain tuples instead of ``bulk_create``: building a model instance per record and
    preparing every value field by field was most of the flush thread's time, which holds
    the GIL against the event loop (docs/benchmarks.md, "Where the time goes"). The records
    hold plain numbers and strings, which the database driver takes as they are; the time
    goes through the backend's own adaptation, text fields through ``str`` (a choice enum
    becomes its value); a missing field gets the field's default.
    """
    from django.db import connections, router, transaction

    from caipi.governance.models import UsageRecord

    roles = _roles(batch) if any(not item.get("role") for item in batch) else {}
    alias = router.db_for_write(UsageRecord)
    connection = connections[alias]
    columns = _columns()
    created = connection.ops.adapt_datetimefield_value
    rows = []
    for item in batch:
        values = dict(item)
        values["created_at"] = created(datetime.fromtimestamp(values.pop("at"), UTC))
        if not values.get("role"):
            key = (values.get("user_id"), values.get("course_id"))
            values["role"] = roles.get(key) or roles.get((key[0], None), "")
        rows.append(
            tuple(
                (value if text is None else text(value))
                if (value := values.get(name)) is not None
                else (default() if callable(default) else default)
                for name, default, text in columns
            )
        )
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name, _, _ in columns)
    marks = ", ".join(["%s"] * len(columns))
    table = quote(UsageRecord._meta.db_table)
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (quoted names)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _columns() -> list[tuple[str, Any, Any]]:
    """The usage table's columns but the primary key: (column, default, ``str`` for text
    columns else None). A default is a value or a callable; None without one."""
    from django.db import models

    from caipi.governance.models import UsageRecord

    return [
        (
            field.column or field.attname,
            field.default if field.has_default() else None,
            str if isinstance(field, models.CharField) else None,
        )
        for field in UsageRecord._meta.concrete_fields
        if not field.primary_key
    ]


def usage_pending() -> int:
    """How many records wait in this process's buffer."""
    return len(_buffer)


def usage_flush_at_shutdown() -> None:
    """Write what is queued as the process ends; a failure loses the records (logged).

    Registered with ``atexit``, and called by the ASGI lifespan shutdown too: uvicorn ends
    a process it stopped on SIGTERM by raising that signal again once its shutdown is done,
    and a process ended by a signal runs no ``atexit`` handler — every record of the last
    flush interval was lost on each restart. The lifespan runs it in a pool thread, whose
    database connection is closed here (an in-process server, as in tests, lives on).
    """
    try:
        usage_flush()
    except Exception as exc:
        logger.warning("%d usage records lost at exit: %s", usage_pending(), type(exc).__name__)
    finally:
        connections.close_all()


atexit.register(usage_flush_at_shutdown)
