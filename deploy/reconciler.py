"""The reconciler: make each deployment's running instances match what it should have.

One tick per deployment, under a lock (``deploy.locks``) so two Celery workers never act on
the same deployment at once and never double-start:

1. observe every live instance through its launcher: a starting instance whose health path
   answers becomes *ready* (its endpoint takes calls); one that exits or stays unhealthy
   past the start-up timeout *fails*, with the last lines of its log kept for the admin; a
   ready one that exits (a crash, a Slurm job cancelled from outside, a vanished node) fails
   and is replaced; a draining one stops once its engine has no call left;
2. decide the desired count (``deploy.autoscale.decide``) from the engines' signals and
   CAIPI's own queue (``deploy.demand``), recording every change with its reason;
3. start instances up to that count (after the restart back-off if starts have failed), or
   drain the surplus — or put it to sleep where the engine has vLLM's sleep mode.

Idempotent: a tick with nothing to change changes nothing. Instances are rows
(``Instance``) holding the launcher's handle, so any worker can pick up where another left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from caipi.core.redis import redis_configured
from deploy import autoscale, demand, services, vllm_client
from deploy.launchers import launcher_for
from deploy.launchers.base import Launcher, LaunchError, RunState
from deploy.locks import held
from deploy.models import (
    LIVE_INSTANCE_STATES,
    Deployment,
    EndpointState,
    Instance,
    InstanceState,
    ScalingDecision,
)
from deploy.selectors import calendar_window_now
from deploy.specs import Spec

logger = logging.getLogger(__name__)

# Seconds a draining endpoint keeps running at least, so that every gateway process has
# reloaded its routing table before the engine is checked: within a second of the change
# when they share Redis, else only at their periodic reload (the embedded demo).
DRAIN_SETTLE_SECONDS = 2.0


def drain_settle_seconds() -> float:
    if redis_configured():
        return DRAIN_SETTLE_SECONDS
    return max(DRAIN_SETTLE_SECONDS, settings.GATEWAY_ROUTING_MAX_AGE + 1)


_SAMPLES_KEY = "deploy:samples:{}"


@dataclass
class TickReport:
    """What one tick did to one deployment (for logs, the command and tests)."""

    deployment_id: int
    skipped: bool = False
    started: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    draining: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    decision: str = ""


def reconcile_all() -> list[TickReport]:
    """One tick for every deployment (disabled ones are scaled down to zero)."""
    return [reconcile(deployment_id=d) for d in Deployment.objects.values_list("id", flat=True)]


def reconcile(*, deployment_id: int) -> TickReport:
    """One tick for one deployment; skipped (``report.skipped``) when another holds it."""
    ttl = max(60.0, settings.DEPLOY_RECONCILE_SECONDS * 12)
    with held(f"deploy:reconcile:{deployment_id}", ttl=ttl) as got:
        if not got:
            return TickReport(deployment_id, skipped=True)
        deployment = Deployment.objects.select_related("model").get(pk=deployment_id)
        return _Tick(deployment).run()


def spec_of(deployment: Deployment) -> Spec:
    """The deployment's row as a ``Spec`` (what launchers are given)."""
    model = deployment.model
    return Spec(
        name=model.name,
        served_name=model.served_name,
        kind=model.kind,
        description=model.description,
        **{
            name: getattr(deployment, name)
            for name in Spec.__dataclass_fields__
            if name not in ("name", "served_name", "kind", "description")
        },
    )


class _Tick:
    """One reconciler tick over one deployment (holds the lock for its whole life)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.spec = spec_of(deployment)
        self.launcher: Launcher = launcher_for(deployment.launcher)
        self.report = TickReport(deployment.pk)
        self.spec_hash = spec_digest(self.spec)
        self._waiting = 0
        self.now = timezone.now()

    def run(self) -> TickReport:
        live = list(self.deployment.instances.filter(state__in=LIVE_INSTANCE_STATES))
        for instance in live:
            self._observe(instance)
        active = [i for i in live if i.state in _ACTIVE and not i.retiring]
        decision = self._decide(active)
        self._retire(live, active, wanted=decision.desired)
        if decision.desired == len(active) and self._sleeps:
            self._sleep_if_idle(active)
        if decision.desired > len(active):
            for _ in range(decision.desired - len(active)):
                if not self._start_one():
                    break
        elif decision.desired < len(active):
            for instance in _surplus(active, len(active) - decision.desired):
                self._drain(instance)
        return self.report

    # -- 1. observe ------------------------------------------------------------------------

    def _observe(self, instance: Instance) -> None:
        status = self.launcher.status(instance.handle)
        self._follow_endpoint(instance)
        if status.state in (RunState.EXITED, RunState.GONE):
            if instance.state == InstanceState.DRAINING or instance.retiring:
                self._stopped(instance)
            else:
                what = status.detail or status.state.value
                during = "during start-up" if instance.state == InstanceState.STARTING else ""
                self._fail(instance, f"{what} {during}".strip())
            return
        if status.url and not instance.url:
            instance.url = status.url
            instance.save(update_fields=["url"])
        outdated = instance.spec_hash != self.spec_hash
        if instance.state == InstanceState.STARTING and outdated:
            self._drain(instance)  # started from an older spec and not serving yet
        elif (
            (status.renew_due or outdated) and instance.state in _SERVING and not instance.retiring
        ):
            instance.retiring = True
            instance.save(update_fields=["retiring"])
            why = "nears its time limit" if status.renew_due else "runs an older spec"
            logger.info("%s: instance %s %s", self.spec.name, instance.pk, why)
            self._start_one()  # its successor first: no gap
        if instance.state == InstanceState.STARTING:
            self._check_start(instance, running=status.state == RunState.RUNNING)
        elif instance.state == InstanceState.DRAINING:
            self._check_drain(instance)

    def _follow_endpoint(self, instance: Instance) -> None:
        """Take over sleep and wake from the endpoint: the gateway wakes a sleeping
        endpoint on the first call, and an admin may put one to sleep."""
        endpoint = instance.endpoint
        if endpoint is None or instance.state not in _SERVING:
            return
        mirrored = {EndpointState.READY: InstanceState.READY}
        mirrored[EndpointState.SLEEPING] = InstanceState.SLEEPING
        state = mirrored.get(EndpointState(endpoint.state))
        if state is not None and state != instance.state:
            instance.state = state
            if state == InstanceState.READY:
                instance.ready_at = timezone.now()  # its idle time starts again
            instance.save(update_fields=["state", "ready_at"])

    def _check_start(self, instance: Instance, *, running: bool) -> None:
        engine_health = _health_path(self.spec)
        if running and instance.url and instance.endpoint is None:
            instance.endpoint = services.endpoint_add(
                model=self.deployment.model,
                url=instance.url,
                state=EndpointState.STARTING,
                health_path=engine_health,
            )
            instance.save(update_fields=["endpoint"])
        if running and instance.url:
            outcome = vllm_client.probe_once(instance.url + engine_health, within=2.0)
            if outcome is None:
                self._ready(instance)
                return
        waited = (self.now - instance.started_at).total_seconds()
        if waited > self.deployment.startup_timeout:
            self._fail(instance, f"not healthy after {self.deployment.startup_timeout} s")

    def _check_drain(self, instance: Instance) -> None:
        since = (self.now - (instance.drain_started_at or self.now)).total_seconds()
        if since < drain_settle_seconds():
            return
        load = vllm_client.scrape_once(instance.url, within=2.0) if instance.url else None
        idle = load is not None and load.running == 0 and load.waiting == 0
        if idle or load is None or since >= settings.DEPLOY_DRAIN_TIMEOUT:
            self.launcher.stop(instance.handle)
            self._stopped(instance)

    # -- state changes ---------------------------------------------------------------------

    @transaction.atomic
    def _ready(self, instance: Instance) -> None:
        instance.state, instance.ready_at = InstanceState.READY, timezone.now()
        instance.save(update_fields=["state", "ready_at"])
        if instance.endpoint is not None:
            services.endpoint_set_state(endpoint=instance.endpoint, state=EndpointState.READY)
        Deployment.objects.filter(pk=self.deployment.pk).update(
            start_failures=0, next_start_at=None
        )
        self.report.ready.append(instance.pk)
        logger.info("instance %s of %s is ready", instance.pk, self.spec.name)

    def _fail(self, instance: Instance, why: str) -> None:
        """Give up on the instance: stop it, keep its log tail, back off further starts."""
        self.launcher.stop(instance.handle, grace=5.0)
        tail = self.launcher.logs(instance.handle) or "(the log is empty)\n"
        with transaction.atomic():
            instance.state, instance.stopped_at = InstanceState.FAILED, timezone.now()
            instance.error = f"{why}; last lines of its log:\n{tail}"
            instance.save(update_fields=["state", "stopped_at", "error"])
            self._forget_endpoint(instance)
            self._fail_backoff()
        self.report.failed.append(instance.pk)
        logger.warning("instance %s of %s failed: %s", instance.pk, self.spec.name, why)

    def _stopped(self, instance: Instance) -> None:
        with transaction.atomic():
            instance.state, instance.stopped_at = InstanceState.STOPPED, timezone.now()
            instance.save(update_fields=["state", "stopped_at"])
            self._forget_endpoint(instance)
        self.report.stopped.append(instance.pk)
        logger.info("instance %s of %s stopped", instance.pk, self.spec.name)

    def _forget_endpoint(self, instance: Instance) -> None:
        if instance.endpoint is not None:
            services.endpoint_remove(endpoint=instance.endpoint)
            instance.endpoint = None

    def _drain(self, instance: Instance) -> None:
        """Take the instance out of rotation; a later tick stops it once it is idle."""
        with transaction.atomic():
            if instance.state == InstanceState.STARTING or instance.endpoint is None:
                self.launcher.stop(instance.handle)
                self._stopped(instance)
                return
            instance.state, instance.drain_started_at = InstanceState.DRAINING, timezone.now()
            instance.save(update_fields=["state", "drain_started_at"])
            services.endpoint_drain(endpoint=instance.endpoint)
        self.report.draining.append(instance.pk)

    def _retire(self, live: list[Instance], active: list[Instance], *, wanted: int) -> None:
        """Drain retiring instances (renewed or outdated) once their successors serve: no
        successor still starting and one ready — or at once when none is wanted at all."""
        successors_ready = any(i.state == InstanceState.READY for i in active) and not any(
            i.state == InstanceState.STARTING for i in active
        )
        if not (successors_ready or wanted == 0):
            return
        for instance in live:
            if instance.retiring and instance.state in _ACTIVE:
                self._drain(instance)

    @property
    def _sleeps(self) -> bool:
        return bool(self.deployment.sleep_level) and self.deployment.enabled

    def _sleep_if_idle(self, active: list[Instance]) -> None:
        """With sleep mode, idle instances sleep instead of stopping (they wake in seconds on
        the next call, through the gateway). Idle: no call for ``idle_seconds``."""
        awake = [i for i in active if i.state == InstanceState.READY and i.endpoint is not None]
        if not awake or self._waiting:
            return
        last = demand.demand_last_call(model_id=self.deployment.model_id)
        since = [last or 0.0] + [i.ready_at.timestamp() for i in awake if i.ready_at]
        idle = time.time() - max(since)
        if idle < self.deployment.idle_seconds:
            return
        level = self.deployment.sleep_level
        for instance in awake:
            assert instance.endpoint is not None
            try:
                services.endpoint_sleep(endpoint=instance.endpoint, level=level)
            except (vllm_client.UpstreamError, ValidationError) as exc:
                logger.warning(
                    "%s: instance %s did not sleep: %s", self.spec.name, instance.pk, exc
                )
                continue
            instance.state = InstanceState.SLEEPING
            instance.save(update_fields=["state"])
        ScalingDecision.objects.create(
            deployment=self.deployment,
            current=len(active),
            desired=len(active),
            reason=f"no call for {self.deployment.idle_seconds} s: asleep (level {level})",
            signals=self._signal_summary(),
        )

    # -- 2. decide ---------------------------------------------------------------------------

    def _decide(self, active: list[Instance]) -> autoscale.Decision:
        deployment, now = self.deployment, time.time()
        if not deployment.enabled or not deployment.model.enabled:
            decision = autoscale.Decision(0, "disabled" if active else "")
        else:
            ready = [i for i in active if i.state == InstanceState.READY]
            last = deployment.decisions.values_list("at", flat=True).first()
            warm, warm_reason = self._warmth()
            self._active, self._waiting = (
                active,
                demand.demand_waiting(model_id=deployment.model_id),
            )
            signals = autoscale.Signals(
                now=now,
                current=len(active),
                ready=len(ready),
                caipi_waiting=self._waiting,
                last_call=demand.demand_last_call(model_id=deployment.model_id),
                samples=self._samples(ready, now),
                last_change=last.timestamp() if last else None,
                warm=warm,
                warm_reason=warm_reason,
            )
            decision = autoscale.decide(
                rules=autoscale.Rules.from_spec(deployment.scaling),
                min_instances=deployment.min_instances,
                max_instances=deployment.max_instances,
                # With sleep mode, idle instances sleep (``_sleep_if_idle``), not stop.
                idle_seconds=math.inf if self._sleeps else deployment.idle_seconds,
                signals=signals,
            )
        if decision.desired != len(active) and decision.reason:
            ScalingDecision.objects.create(
                deployment=deployment,
                current=len(active),
                desired=decision.desired,
                reason=decision.reason,
                signals=self._signal_summary(),
            )
            self.report.decision = decision.reason
            logger.info(
                "%s: %d → %d (%s)", self.spec.name, len(active), decision.desired, decision.reason
            )
        return decision

    def _warmth(self) -> tuple[bool, str]:
        """Whether the deployment is inside one of its warm windows or a course calendar's,
        and which."""
        deployment = self.deployment
        if autoscale.in_warm_window(deployment.warm_windows, self.now):
            return True, "inside a warm window"
        window = calendar_window_now(model_id=deployment.model_id, now=self.now)
        if window is None:
            return False, ""
        return True, f"calendar warm-up: {window.event_name} ({window.course.title})"[:300]

    def _samples(self, ready: list[Instance], now: float) -> tuple[autoscale.Sample, ...]:
        """This tick's engine signals added to the stored window, which is returned."""
        from deploy.health import health_read

        key = _SAMPLES_KEY.format(self.deployment.pk)
        window = autoscale.Rules.from_spec(self.deployment.scaling).window_seconds
        kept = [s for s in cache.get(key, []) if s[0] >= now - window * 2]
        snapshots = health_read([i.endpoint_id for i in ready if i.endpoint_id])
        if ready and snapshots and len(ready) == len(self._active):
            count = len(ready)
            times = [s.queue_time for s in snapshots.values() if s.queue_time is not None]
            kept.append(
                (
                    now,
                    sum(s.waiting for s in snapshots.values()) / count,
                    sum(s.running for s in snapshots.values()) / count,
                    max(s.kv_usage for s in snapshots.values()),
                    sum(times) / len(times) if times else None,
                    self._waiting,
                )
            )
        else:
            kept = []  # no ready instance: nothing is sustained across this gap
        cache.set(key, kept, timeout=int(window * 4) + 60)
        self._last_samples = kept
        return tuple(autoscale.Sample(*s) for s in kept)

    def _signal_summary(self) -> dict[str, float | None]:
        samples = getattr(self, "_last_samples", [])
        if not samples:
            return {"waiting_caipi": getattr(self, "_waiting", 0)}
        _at, waiting, running, kv, queue_time, caipi_waiting = samples[-1]
        return {
            "waiting_caipi": caipi_waiting,
            "engine_waiting": waiting,
            "engine_running": running,
            "kv_usage": kv,
            "queue_time": queue_time,
        }

    # -- 3. act ------------------------------------------------------------------------------

    def _start_one(self) -> bool:
        """Start one instance; False when the back-off or the launcher says not now."""
        deployment = self.deployment
        if deployment.next_start_at and deployment.next_start_at > timezone.now():
            return False
        instance = Instance.objects.create(
            deployment=deployment, launcher=deployment.launcher, spec_hash=self.spec_hash
        )
        others = Instance.objects.filter(
            launcher=deployment.launcher, state__in=LIVE_INSTANCE_STATES
        ).exclude(pk=instance.pk)
        placed = self.launcher.held([i.handle for i in others])
        try:
            plan = self.launcher.plan(self.spec, instance_id=instance.pk, placed=placed)
            instance.handle = self.launcher.start(self.spec, plan)
        except (LaunchError, OSError) as exc:
            instance.state, instance.error = InstanceState.FAILED, f"could not start: {exc}"
            instance.stopped_at = timezone.now()
            instance.save(update_fields=["state", "error", "stopped_at"])
            self._fail_backoff()
            self.report.failed.append(instance.pk)
            logger.warning("%s: could not start an instance: %s", self.spec.name, exc)
            return False
        instance.gpus, instance.port = list(plan.gpus), plan.port
        instance.url = str(instance.handle.get("url") or "")
        if instance.url:  # known at once (local processes): gateways probe it from now on
            instance.endpoint = services.endpoint_add(
                model=deployment.model,
                url=instance.url,
                state=EndpointState.STARTING,
                health_path=_health_path(self.spec),
            )
        instance.save(update_fields=["handle", "gpus", "port", "url", "endpoint"])
        self.report.started.append(instance.pk)
        logger.info("%s: started instance %s (%s)", self.spec.name, instance.pk, instance.url)
        return True

    def _fail_backoff(self) -> None:
        """Delay the next start: RESTART_BACKOFF doubled per failure in a row, capped."""
        failures = self.deployment.start_failures + 1
        backoff = min(
            settings.DEPLOY_RESTART_BACKOFF * 2 ** (failures - 1),
            settings.DEPLOY_RESTART_BACKOFF_MAX,
        )
        self.deployment.start_failures = failures
        self.deployment.next_start_at = timezone.now() + dt.timedelta(seconds=backoff)
        self.deployment.save(update_fields=["start_failures", "next_start_at"])


_ACTIVE = (InstanceState.STARTING, InstanceState.READY, InstanceState.SLEEPING)
_SERVING = (InstanceState.READY, InstanceState.SLEEPING)


def spec_digest(spec: Spec) -> str:
    """What an instance was started from: engine, its arguments, GPUs, launcher, target.
    Bounds, scaling and timeouts are not in it: changing them keeps running instances."""
    fields = {
        k: getattr(spec, k)
        for k in ("served_name", "engine", "engine_args", "gpus_per_instance", "launcher", "target")
    }
    fields["sleep_level"] = bool(spec.sleep_level)  # vLLM needs --enable-sleep-mode at start
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _surplus(active: list[Instance], count: int) -> list[Instance]:
    """Which instances to let go: ones still starting first, then the newest."""
    order = sorted(active, key=lambda i: (i.state != InstanceState.STARTING, -i.pk))
    return order[:count]


def _health_path(spec: Spec) -> str:
    from deploy.launchers.base import engine_for

    return engine_for(spec).health_path
