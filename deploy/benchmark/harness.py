"""Brings up everything one benchmark run needs and turns it into targets.

Simulator pools: "main" (three identical simulators), "uneven" (two fast, one slow with
few slots) and, for the engine-kill scenario, "kill" (three, the first dying mid-stream).
Targets: ``direct`` (client-side round-robin over a pool), one ``caipi-<server>`` per ASGI
server (one worker, authentication and quotas on), ``caipi-uvicorn-2w`` (two uvicorn
workers of the same CAIPI, one database and Redis, not pinned to one CPU), with
``--baseline-tree`` also one ``caipi-<server>-baseline`` per server running another source
tree's CAIPI against the same simulators, and ``litellm``.
Everything listens on loopback; all processes stop when the ``ProcessSet`` closes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.benchmark import caipi_env, engine_kill, litellm_env
from deploy.benchmark.processes import (
    Managed,
    ProcessSet,
    SimulatorSpec,
    free_port,
    start,
    start_simulators,
    wait_ready,
)
from deploy.benchmark.scenarios import Target

logger = logging.getLogger(__name__)

MAIN_MODEL = "bench-model"
UNEVEN_MODEL = "bench-uneven"
KILL_MODEL = engine_kill.KILL_MODEL
TWO_WORKER_SERVER = "uvicorn"


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line decided (see ``__main__``)."""

    run_dir: Path
    targets: tuple[str, ...]
    servers: tuple[str, ...]
    sut_cpus: tuple[int, ...]
    aux_cpus: tuple[int, ...]
    main_sim: SimulatorSpec
    fast_sim: SimulatorSpec
    slow_sim: SimulatorSpec
    litellm_routing: str
    litellm_venv: Path
    database_url: str | None
    redis_url: str | None
    baseline_tree: Path | None = None
    kill_pool: bool = False

    @property
    def two_worker_cpus(self) -> tuple[int, ...]:
        """The two-worker target's CPUs: the servers' when there are two of them, else
        every CPU of the run, left to the scheduler (one worker per core, docs)."""
        if len(self.sut_cpus) >= 2:
            return self.sut_cpus
        return tuple(sorted({*self.sut_cpus, *self.aux_cpus}))


@dataclass(slots=True)
class Bench:
    """The started world: simulators by pool and the targets to measure."""

    pools: dict[str, list[Managed]]
    targets: list[Target] = field(default_factory=list)
    stages: dict[str, engine_kill.KillStage] = field(default_factory=dict)

    @property
    def simulators(self) -> list[Managed]:
        """Every simulator process (their CPU is reported separately)."""
        return [sim for sims in self.pools.values() for sim in sims]

    def urls(self) -> dict[str, tuple[str, ...]]:
        """Pool name to the simulators' base URLs."""
        return {name: tuple(s.base_url for s in sims) for name, sims in self.pools.items()}

    def models(self) -> dict[str, tuple[str, ...]]:
        """Model name to its endpoints' base URLs."""
        urls = self.urls()
        models = {MAIN_MODEL: urls["main"], UNEVEN_MODEL: urls["uneven"]}
        if "kill" in urls:
            models[KILL_MODEL] = urls["kill"]
        return models


def bring_up(settings: Settings, procs: ProcessSet) -> Bench:
    """Start simulators and every requested target; returns them ready for load."""
    main = start_simulators([settings.main_sim] * 3, procs, settings.run_dir, settings.aux_cpus)
    uneven_specs = [settings.fast_sim, settings.fast_sim, settings.slow_sim]
    uneven = start_simulators(uneven_specs, procs, settings.run_dir, settings.aux_cpus)
    bench = Bench(pools={"main": main, "uneven": uneven})
    if settings.kill_pool:
        specs = engine_kill.kill_specs()
        kill = start_simulators(specs, procs, settings.run_dir, settings.aux_cpus)
        bench.pools["kill"] = kill
        bench.stages["engine-kill"] = engine_kill.KillStage(
            procs, kill, specs[0], settings.run_dir, settings.aux_cpus
        )
    if "direct" in settings.targets:
        bench.targets.append(Target("direct", bench.urls()))
    if "caipi" in settings.targets or "caipi-2w" in settings.targets:
        bench.targets.extend(_caipi_targets(settings, bench, procs))
        if settings.baseline_tree is not None and "caipi" in settings.targets:
            bench.targets.extend(_caipi_targets(settings, bench, procs, baseline=True))
    if "litellm" in settings.targets:
        bench.targets.append(_litellm_target(settings, bench, procs))
    return bench


def _caipi_targets(
    settings: Settings, bench: Bench, procs: ProcessSet, *, baseline: bool = False
) -> list[Target]:
    """One CAIPI per ASGI server, from this tree or (``baseline``) the baseline tree, each
    tree with a data dir, database and Redis database of its own; from this tree also the
    two-worker uvicorn (same data) when asked for."""
    suffix = "-baseline" if baseline else ""
    tree = settings.baseline_tree if baseline and settings.baseline_tree else caipi_env.REPO
    database_url, redis_url = settings.database_url, settings.redis_url
    if baseline:
        database_url, redis_url = caipi_env.baseline_urls(database_url, redis_url)
    data_dir = settings.run_dir / f"caipi{suffix}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = caipi_env.caipi_env(data_dir, database_url, redis_url, tree)
    log = settings.run_dir / f"caipi{suffix}-setup.log"
    key = caipi_env.provision(bench.models(), env, log, tree)
    if redis_url:
        caipi_env.start_celery(
            procs, env, settings.run_dir, settings.sut_cpus, name=f"celery{suffix}", tree=tree
        )
    shapes = [(server, 1) for server in settings.servers] if "caipi" in settings.targets else []
    if "caipi-2w" in settings.targets and not baseline:
        shapes.append((TWO_WORKER_SERVER, 2))
    targets = []
    for server, workers in shapes:
        name = f"caipi-{server}{suffix}" + ("-2w" if workers == 2 else "")
        cpus = settings.sut_cpus if workers == 1 else settings.two_worker_cpus
        proc = caipi_env.start_server(
            server, procs, env, settings.run_dir, cpus, key, MAIN_MODEL,
            name=name, tree=tree, workers=workers,
        )  # fmt: skip
        pools: dict[str, tuple[str, ...]] = {pool: (proc.base_url,) for pool in bench.pools}
        targets.append(Target(name, pools, api_key=key, sut=proc))
    return targets


def _litellm_target(settings: Settings, bench: Bench, procs: ProcessSet) -> Target:
    executable = litellm_env.ensure_venv(
        settings.litellm_venv, settings.run_dir / "litellm-install.log"
    )
    config = litellm_env.proxy_config(bench.models(), settings.litellm_routing)
    config_path = litellm_env.write_config(settings.run_dir / "litellm-config.yaml", config)
    port = free_port()
    proc = procs.add(
        start(
            "litellm",
            litellm_env.proxy_command(executable, config_path, port),
            port=port,
            run_dir=settings.run_dir,
            cpus=settings.sut_cpus,
            env=litellm_env.proxy_env(),
            cwd=settings.run_dir,
        )
    )
    wait_ready(proc, "/health/liveliness", 180)
    pools: dict[str, tuple[str, ...]] = {pool: (proc.base_url,) for pool in bench.pools}
    return Target("litellm", pools, api_key=litellm_env.MASTER_KEY, sut=proc)


def target_names(targets: Sequence[Target]) -> list[str]:
    """Names of the targets, in interleaving order."""
    return [t.name for t in targets]
