"""Calls that wait for a model with no ready endpoint, instead of failing.

A model may have no ready endpoint because its instances are starting (the reconciler
registered them in state *starting*), sleeping (vLLM's sleep mode), or because it scaled
to zero and its deployment will start one (``ModelRoute.startable``). Then a call does not
get a 503: ``upstream_call.call_open`` puts it in this process's queue for the model.

1. **Join.** The queue is bounded (GATEWAY_QUEUE_SIZE per model and process): a call that
   finds it full is refused at once with 503 + Retry-After saying so. Each waiting call
   counts in ``deploy.demand`` (Redis), where the reconciler sees it and scales up. For a
   model with no live endpoint at all (scaled to zero) the first waiting call also asks for
   a reconciler tick at once (``deploy.tasks.reconcile_model``; one process claims it per
   KICK_SECONDS through ``deploy.demand``) instead of waiting for the periodic one.
2. **Bring the model up.** One watcher task per queue: it wakes a sleeping endpoint (one
   process claims the wake through ``deploy.demand``), and polls every starting or waking
   endpoint itself every GATEWAY_QUEUE_PROBE_SECONDS — ``/health`` for a starting one,
   ``/is_sleeping`` for a waking one — rather than waiting for the periodic health poll
   and the routing reload (which cost seconds). An endpoint that answers is marked ready
   in the database (a conditional update, idempotent with the reconciler), in this
   process's catalog and in the shared health snapshots at once.
3. **Release in a fair order.** Waiting calls are kept in one lane per course (API users
   without a course: one lane per key) and released round-robin across lanes, oldest first
   within a lane — so one course's batch of 500 cannot starve another course's student.
   At most GATEWAY_QUEUE_RELEASE_PER_ENDPOINT released calls per ready endpoint are
   *opening* (sent, first byte not yet back) at a time; each one that opens lets the next
   go. While the queue drains, new calls for the model queue behind it.
4. **Tell the caller.** Every GATEWAY_QUEUE_STATUS_SECONDS the call's ``on_wait``
   receives a ``WaitStatus`` (position, about how long): /v1 streams turn it into SSE
   comments (keep-alive), the course pages into a status line.
5. **Give up, explained.** A call still waiting after GATEWAY_QUEUE_MAX_WAIT seconds gets
   a 503 + Retry-After whose message says what it waited for and for how long.

Why per process and not one queue in Redis: a waiting call is an open HTTP connection (or a
Celery task's coroutine) that lives in one process and can only be sent from there, so the
order that matters is the order in which each process sends its own calls. Every process
releases its queue in the fair order as soon as an endpoint is ready; calls of a busy
course spread over processes are then interleaved with everyone else's in each of them.
What is shared is what must be: the count of waiting calls (the reconciler's signal), the
wake claim, endpoint states and health.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections

from caipi.core.errors import Unavailable
from caipi.core.redis import RedisError
from caipi.gateway.catalog import catalog
from deploy import demand, vllm_client
from deploy.health import EndpointHealth, health_write
from deploy.models import Endpoint, EndpointState
from deploy.selectors import EndpointRoute, ModelRoute

logger = logging.getLogger(__name__)

STARTING, SLEEPING, READY = EndpointState.STARTING, EndpointState.SLEEPING, EndpointState.READY
# Seconds between two requests for a reconciler tick for a model still at zero instances
# (over all processes): the periodic tick keeps running meanwhile.
KICK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class WaitStatus:
    """What a waiting call is told: its place in the release order (1 = next), how many
    wait, about how many seconds until the model serves, and why it waits
    (``starting``, ``waking`` or ``scaling``: no instance yet)."""

    model: str
    position: int
    waiting: int
    eta: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "position": self.position,
            "waiting": self.waiting,
            "eta": round(self.eta),
            "reason": self.reason,
        }

    def comment(self) -> bytes:
        """The status as an SSE comment line (ignored by OpenAI clients; keeps the
        connection alive through proxies)."""
        return (
            f": model {self.model} is {self.reason}: position {self.position} of "
            f"{self.waiting}, about {round(self.eta)} s\n\n"
        ).encode()


OnWait = Callable[[WaitStatus], Awaitable[None]]


def may_wait(model: ModelRoute) -> bool:
    """True when the model will have a ready endpoint without an admin's help: one is
    starting or sleeping, or its deployment starts instances on demand."""
    return model.startable or any(e.state in (STARTING, SLEEPING) for e in model.endpoints)


def has_ready(model: ModelRoute) -> bool:
    return any(e.state == READY for e in model.endpoints)


@dataclass(eq=False, slots=True)
class Waiter:
    """One waiting call."""

    lane: object
    ticket: str
    deadline: float
    released: asyncio.Future[None]


@dataclass(eq=False)
class ModelQueue:
    """The waiting calls of one model in one event loop, in lanes per course."""

    name: str
    model_id: int
    lanes: dict[object, deque[Waiter]] = field(default_factory=dict)
    opening: int = 0
    since: float = field(default_factory=time.time)
    watcher: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    noted: bool = False  # a waiting call of this queue counts in deploy.demand
    kicked_at: float = -KICK_SECONDS
    kicker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(lane) for lane in self.lanes.values())

    def add(self, waiter: Waiter) -> None:
        self.lanes.setdefault(waiter.lane, deque()).append(waiter)

    def remove(self, waiter: Waiter) -> None:
        lane = self.lanes.get(waiter.lane)
        if lane is not None and waiter in lane:
            lane.remove(waiter)
            if not lane:
                del self.lanes[waiter.lane]

    def order(self) -> Iterator[Waiter]:
        """Waiting calls in release order: round-robin across lanes, oldest first in each.
        Lanes take turns in the order they first had a waiting call; a released call's
        lane moves to the back (see ``pop_next``)."""
        lanes = [list(lane) for lane in self.lanes.values()]
        for row in itertools.zip_longest(*lanes):
            yield from (w for w in row if w is not None)

    def pop_next(self) -> Waiter | None:
        """Take the next call in release order; its lane goes to the back of the turn."""
        for key in list(self.lanes):
            lane = self.lanes.pop(key)
            waiter = lane.popleft()
            if lane:
                self.lanes[key] = lane
            return waiter
        return None

    def position(self, waiter: Waiter) -> int:
        for place, other in enumerate(self.order(), start=1):
            if other is waiter:
                return place
        return 1


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ModelQueue]] = (
    weakref.WeakKeyDictionary()
)
# How many queues exist in this process: the hot path looks no further while it is 0.
active = 0
# Seconds the last start or wake of each model took in this process (for estimates).
_took: dict[tuple[str, str], float] = {}


def queued(model_name: str) -> bool:
    """True when calls for the model wait in this event loop (new calls queue behind them)."""
    queues = _queues.get(asyncio.get_running_loop())
    return queues is not None and model_name in queues


def _queue(model: ModelRoute) -> ModelQueue:
    global active
    queues = _queues.setdefault(asyncio.get_running_loop(), {})
    queue = queues.get(model.name)
    if queue is None:
        queue = queues[model.name] = ModelQueue(model.name, model.id)
        active += 1
    return queue


def _lane(principal: Any) -> object:
    if principal.course_id is not None:
        return ("course", principal.course_id)
    return ("key", principal.key_id or principal.user_id)


@asynccontextmanager
async def turn(model: ModelRoute, principal: Any, on_wait: OnWait | None) -> Any:
    """Wait until this call may be sent (step 1-5 of the module doc), then hold its
    *opening* place until the block ends — i.e. until its first byte came back or it
    failed. Raises Unavailable (queue full, or waited too long)."""
    queue = _queue(model)
    if len(queue) >= settings.GATEWAY_QUEUE_SIZE:
        raise _full(model, len(queue))
    loop = asyncio.get_running_loop()
    waiter = Waiter(
        lane=_lane(principal),
        ticket=uuid.uuid4().hex,
        deadline=time.monotonic() + settings.GATEWAY_QUEUE_MAX_WAIT,
        released=loop.create_future(),
    )
    queue.add(waiter)
    _ensure_watcher(queue)
    queue.changed.set()
    try:
        await _note(queue, waiter)
        _kick_if_cold(queue, catalog().models.get(queue.name, model))
        await _wait(queue, waiter, on_wait)
    except BaseException:
        queue.remove(waiter)
        if waiter.released.done() and not waiter.released.cancelled():
            queue.opening -= 1
        _forget_if_idle(queue)
        raise
    finally:
        await demand.demand_done(model_id=queue.model_id, ticket=waiter.ticket)
    try:
        yield
    finally:
        queue.opening -= 1
        queue.changed.set()
        _forget_if_idle(queue)


async def _note(queue: ModelQueue, waiter: Waiter) -> None:
    until = time.time() + settings.GATEWAY_QUEUE_MAX_WAIT
    try:
        await demand.demand_note_waiting(model_id=queue.model_id, ticket=waiter.ticket, until=until)
    except RedisError:
        logger.warning("could not count a waiting call for %s in Redis", queue.name)
    else:
        queue.noted = True


def _kick_if_cold(queue: ModelQueue, model: ModelRoute) -> None:
    """Ask for a reconciler tick now when the model is at zero instances (no endpoint
    starting, sleeping or ready) and its deployment can start one — at most once per
    KICK_SECONDS per queue, and only once a waiting call counts as demand (else the tick
    would see nobody waiting)."""
    if not (model.startable and queue.noted) or any(
        e.state in (STARTING, SLEEPING, READY) for e in model.endpoints
    ):
        return
    now = time.monotonic()
    if now - queue.kicked_at < KICK_SECONDS or (queue.kicker and not queue.kicker.done()):
        return
    queue.kicked_at = now
    queue.kicker = asyncio.get_running_loop().create_task(
        _kick(queue), name=f"caipi-kick-{queue.name}"
    )


async def _kick(queue: ModelQueue) -> None:
    from deploy.tasks import reconcile_model

    try:
        if not await demand.demand_claim_start(model_id=queue.model_id, seconds=KICK_SECONDS):
            return  # another process asked already
    except RedisError:
        logger.warning("could not claim the start of %s in Redis", queue.name)
        return

    def ask() -> None:
        reconcile_model.delay(queue.model_id)
        if settings.CELERY_TASK_ALWAYS_EAGER:  # the tick ran here: route to its endpoint now
            catalog().reload()

    logger.info("calls wait for %s at zero instances: asking for a start now", queue.name)
    try:
        await asyncio.to_thread(_in_thread, ask)
    except Exception:  # the periodic tick still starts it; the calls keep waiting
        logger.exception("could not ask the reconciler to start %s", queue.name)
    queue.changed.set()


async def _wait(queue: ModelQueue, waiter: Waiter, on_wait: OnWait | None) -> None:
    every = settings.GATEWAY_QUEUE_STATUS_SECONDS
    while not waiter.released.done():
        left = waiter.deadline - time.monotonic()
        if left <= 0:
            raise _too_long(queue)
        if on_wait is not None:
            await on_wait(status(queue, waiter))
        await asyncio.wait({waiter.released}, timeout=min(every, left))


def status(queue: ModelQueue, waiter: Waiter) -> WaitStatus:
    """Where the call stands and about how long until the model serves."""
    model = catalog().models.get(queue.name)
    reason, eta = _estimate(queue, model)
    return WaitStatus(queue.name, queue.position(waiter), len(queue), eta, reason)


def _estimate(queue: ModelQueue, model: ModelRoute | None) -> tuple[str, float]:
    now = time.time()
    endpoints = model.endpoints if model is not None else ()
    if any(e.state == SLEEPING for e in endpoints):
        expected = _took.get((queue.name, "waking"), settings.GATEWAY_QUEUE_WAKE_ESTIMATE)
        return "waking", max(1.0, expected - (now - queue.since))
    starting = [e for e in endpoints if e.state == STARTING]
    expected = _took.get((queue.name, "starting"), settings.GATEWAY_QUEUE_START_ESTIMATE)
    if starting:
        began = max(e.created for e in starting)
        return "starting", max(1.0, expected - (now - began))
    return "scaling", max(1.0, expected - (now - queue.since))


def _full(model: ModelRoute, waiting: int) -> Unavailable:
    return Unavailable(
        f"The model '{model.name}' is starting and {waiting} calls already wait for it, the "
        f"most this server holds (CAIPI_QUEUE_SIZE). Try again in "
        f"{settings.GATEWAY_RETRY_AFTER} s.",
        extra={"retry_after": settings.GATEWAY_RETRY_AFTER, "reason": "queue_full"},
    )


def _too_long(queue: ModelQueue) -> Unavailable:
    waited = settings.GATEWAY_QUEUE_MAX_WAIT
    return Unavailable(
        f"The model '{queue.name}' did not become ready within {waited:.0f} s, the longest a "
        f"call waits (CAIPI_QUEUE_MAX_WAIT); it may still be starting. Try again in "
        f"{settings.GATEWAY_RETRY_AFTER} s.",
        extra={"retry_after": settings.GATEWAY_RETRY_AFTER, "reason": "start_timeout"},
    )


def _forget_if_idle(queue: ModelQueue) -> None:
    global active
    if len(queue) == 0 and queue.opening <= 0:
        queues = _queues.get(asyncio.get_running_loop(), {})
        if queues.get(queue.name) is queue:
            del queues[queue.name]
            active -= 1
        queue.changed.set()


def _ensure_watcher(queue: ModelQueue) -> None:
    if queue.watcher is None or queue.watcher.done():
        queue.watcher = asyncio.get_running_loop().create_task(
            _watch(queue), name=f"caipi-queue-{queue.name}"
        )


async def _watch(queue: ModelQueue) -> None:
    """Bring the model up and release waiting calls (steps 2 and 3), until none wait."""
    bringing_up: dict[int, asyncio.Task[None]] = {}
    try:
        while len(queue) or queue.opening > 0:
            model = catalog().models.get(queue.name)
            if model is not None:
                if has_ready(model):
                    _release(queue, model)
                else:
                    _kick_if_cold(queue, model)
                    _bring_up(queue, model, bringing_up)
            queue.changed.clear()
            if not len(queue):
                await queue.changed.wait()
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    queue.changed.wait(), timeout=settings.GATEWAY_QUEUE_PROBE_SECONDS
                )
    finally:
        for task in bringing_up.values():
            task.cancel()


def _release(queue: ModelQueue, model: ModelRoute) -> None:
    ready = sum(1 for e in model.endpoints if e.state == READY)
    room = ready * settings.GATEWAY_QUEUE_RELEASE_PER_ENDPOINT - queue.opening
    while room > 0:
        waiter = queue.pop_next()
        if waiter is None:
            break
        if waiter.released.done():  # gave up meanwhile
            continue
        waiter.released.set_result(None)
        queue.opening += 1
        room -= 1


def _bring_up(queue: ModelQueue, model: ModelRoute, tasks: dict[int, asyncio.Task[None]]) -> None:
    for endpoint in model.endpoints:
        if endpoint.state not in (STARTING, SLEEPING):
            continue
        task = tasks.get(endpoint.id)
        if task is None or task.done():
            tasks[endpoint.id] = asyncio.get_running_loop().create_task(
                _probe(queue, endpoint), name=f"caipi-probe-{endpoint.id}"
            )


async def _probe(queue: ModelQueue, endpoint: EndpointRoute) -> None:
    """Check once whether the endpoint serves (waking it if it sleeps and nobody else
    does); when it does, mark it ready everywhere and wake the watcher."""
    within = min(settings.HEALTH_TIMEOUT, 1.0)
    if endpoint.state == SLEEPING:
        if await demand.demand_claim_wake(
            endpoint_id=endpoint.id, seconds=settings.DEPLOY_WAKE_TIMEOUT
        ):
            await _wake(queue, endpoint)
            return
        if (
            await vllm_client.is_sleeping(endpoint.base_url, endpoint.token, within=within)
            is not False
        ):
            return
    elif not await vllm_client.probe_health(
        endpoint.base_url, endpoint.token, within=within, path=endpoint.health_path
    ):
        return
    await _mark_ready(queue, endpoint, moved_from=(STARTING,))


async def _wake(queue: ModelQueue, endpoint: EndpointRoute) -> None:
    from deploy.services import endpoint_wake

    started = time.time()
    try:
        await asyncio.to_thread(_in_thread, lambda: endpoint_wake(endpoint=_row(endpoint)))
    except vllm_client.UpstreamError as exc:
        logger.warning("waking endpoint %s failed: %s", endpoint.id, exc)
        await demand.demand_release_wake(endpoint_id=endpoint.id)
        return
    _took[(queue.name, "waking")] = time.time() - started
    await _mark_ready(queue, endpoint, moved_from=())
    # Awake now: the claim is done. Held on, it would stop the next wake of this endpoint
    # (after it fell asleep again) until the claim expired — DEPLOY_WAKE_TIMEOUT later.
    await demand.demand_release_wake(endpoint_id=endpoint.id)


async def _mark_ready(
    queue: ModelQueue, endpoint: EndpointRoute, *, moved_from: tuple[str, ...]
) -> None:
    from deploy.services import endpoint_transition

    # This process routes to it at once; the database and the shared health snapshot
    # follow (a reload that still reads the old state only sends calls back to the queue).
    fresh = EndpointHealth(endpoint_id=endpoint.id, checked_at=time.time())
    catalog().endpoint_ready(endpoint.id, fresh)
    logger.info("endpoint %s of %s is ready; releasing waiting calls", endpoint.id, queue.name)
    queue.changed.set()
    if endpoint.state == STARTING and endpoint.created:
        _took[(queue.name, "starting")] = time.time() - endpoint.created
    if moved_from:
        await asyncio.to_thread(
            _in_thread,
            lambda: endpoint_transition(endpoint=_row(endpoint), from_states=moved_from, to=READY),
        )
    await asyncio.to_thread(_in_thread, lambda: health_write([fresh]))


def _row(endpoint: EndpointRoute) -> Endpoint:
    """The endpoint's row (call in a pool thread); for a deleted one an unsaved stand-in,
    which conditional updates then leave alone."""
    found = Endpoint.objects.select_related("model").filter(pk=endpoint.id).first()
    return found or Endpoint(pk=endpoint.id, url=endpoint.base_url, token=endpoint.token)


def _in_thread(work: Callable[[], object]) -> object:
    """Run database work in a pool thread, closing its connection after (as the
    background reload does: an idle pool thread must not hold a connection)."""
    try:
        return work()
    finally:
        connections.close_all()
