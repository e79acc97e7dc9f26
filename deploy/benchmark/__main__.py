"""``python -m deploy.benchmark [--quick] [options]``: the gateway benchmark (issues 3, 14).

Starts simulators, CAIPI (uvicorn and/or granian, one worker; two uvicorn workers) and
LiteLLM, runs the scenarios with targets interleaved, ``--repeats`` times each, then
writes ``results.json`` and the plot into the run directory and (unless ``--no-docs``)
the table and the bars, judged in every repeat, into docs/benchmarks.md and docs/benchmarks/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from deploy.benchmark import caipi_env, litellm_env
from deploy.benchmark.harness import KILL_MODEL, MAIN_MODEL, UNEVEN_MODEL, Settings, bring_up
from deploy.benchmark.load import LoadGenerator
from deploy.benchmark.output import write_outputs
from deploy.benchmark.processes import ProcessSet, SimulatorSpec
from deploy.benchmark.scenarios import (
    FULL,
    QUICK,
    SCENARIOS,
    Plan,
    Runner,
    build_steps,
    log_record,
)

logger = logging.getLogger("deploy.benchmark")

TARGETS = ("direct", "caipi", "caipi-2w", "litellm")


def _csv(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {choices}")
        return items

    return parse


def _cpus(text: str) -> tuple[int, ...]:
    return tuple(int(item) for item in text.split(",") if item.strip())


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m deploy.benchmark", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts, two repeats")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs of every step per target (default: 5, --quick 2)",
    )
    p.add_argument("--scenarios", type=_csv(SCENARIOS), default=SCENARIOS)
    p.add_argument("--targets", type=_csv(TARGETS), default=TARGETS)
    p.add_argument(
        "--server",
        choices=("uvicorn", "granian", "both"),
        default="both",
        help="ASGI server(s) for CAIPI; 'both' compares them side by side",
    )
    p.add_argument(
        "--litellm-routing", choices=litellm_env.ROUTING_STRATEGIES, default="simple-shuffle"
    )
    p.add_argument("--generator-procs", type=int, default=2, help="load generator processes")
    p.add_argument(
        "--sut-cpus", type=_cpus, default=None, help="CPUs of CAIPI/LiteLLM (default: the last CPU)"
    )
    p.add_argument(
        "--aux-cpus",
        type=_cpus,
        default=None,
        help="CPUs of simulators and load generator (default: the others)",
    )
    p.add_argument("--ttft", type=float, default=0.05, help="simulator time to first token, s")
    p.add_argument("--tpot", type=float, default=0.1, help="simulator time per token, s")
    p.add_argument(
        "--max-num-seqs",
        type=int,
        default=1024,
        help="slots per simulator (2000 streams need 667 on each of three)",
    )
    p.add_argument(
        "--stream-tokens",
        type=int,
        default=64,
        help="tokens per streamed answer (concurrency and uneven scenarios)",
    )
    p.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    p.add_argument("--slow-ttft", type=float, default=0.5)
    p.add_argument("--slow-tpot", type=float, default=0.15)
    p.add_argument("--slow-max-num-seqs", type=int, default=8)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help=f"default: {caipi_env.DEFAULT_REDIS_URL} when reachable",
    )
    p.add_argument("--no-redis", action="store_true", help="run CAIPI without Redis")
    p.add_argument("--run-dir", type=Path, default=None, help="default var/bench/runs/<time>")
    p.add_argument("--litellm-venv", type=Path, default=Path("var/bench/litellm-venv"))
    p.add_argument("--no-docs", action="store_true", help="write results only to the run dir")
    p.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="also run the CAIPI of another source tree (e.g. a git worktree of the commit "
        "before a change) as caipi-<server>-baseline, interleaved with this one",
    )
    return p  # fmt: skip


def _pinning(args: argparse.Namespace) -> tuple[tuple[int, ...], tuple[int, ...]]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return (), ()
    sut = args.sut_cpus or (available[-1],)
    aux = args.aux_cpus or tuple(cpu for cpu in available if cpu not in sut)
    return sut, aux


def _redis(args: argparse.Namespace) -> str | None:
    if args.no_redis:
        return None
    url = args.redis_url or caipi_env.DEFAULT_REDIS_URL
    return url if caipi_env.redis_reachable(url) else None


def _tree(path: Path | None) -> Path | None:
    if path is None:
        return None
    if not (path / "manage.py").is_file() or not (path / "caipi" / "asgi.py").is_file():
        raise SystemExit(f"--baseline-tree {path}: not a CAIPI source tree (no manage.py)")
    return path.resolve()


def settings_from(args: argparse.Namespace) -> Settings:
    """Turn parsed arguments into the harness settings (and create the run dir)."""
    sut, aux = _pinning(args)
    run_dir = args.run_dir or Path("var/bench/runs") / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    servers = ("uvicorn", "granian") if args.server == "both" else (args.server,)
    return Settings(
        run_dir=run_dir.resolve(),
        targets=args.targets,
        servers=servers,
        sut_cpus=sut,
        aux_cpus=aux,
        main_sim=SimulatorSpec("bench-model", args.ttft, args.tpot, args.max_num_seqs),
        fast_sim=SimulatorSpec("bench-uneven", args.ttft, args.tpot, args.max_num_seqs),
        slow_sim=SimulatorSpec("bench-uneven", args.slow_ttft, args.slow_tpot,
                               args.slow_max_num_seqs),
        litellm_routing=args.litellm_routing,
        litellm_venv=args.litellm_venv.resolve(),
        database_url=args.database_url,
        redis_url=_redis(args),
        baseline_tree=_tree(args.baseline_tree),
        kill_pool="engine-kill" in args.scenarios,
    )  # fmt: skip


def plan_from(args: argparse.Namespace) -> Plan:
    """The counts of the chosen mode, with ``--repeats`` and ``--stream-tokens`` applied."""
    plan = QUICK if args.quick else FULL
    repeats = plan.repeats if args.repeats is None else max(1, args.repeats)
    return replace(plan, repeats=repeats, stream_tokens=args.stream_tokens)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    settings = settings_from(args)
    if settings.aux_cpus:
        os.sched_setaffinity(0, set(settings.aux_cpus))
    plan = plan_from(args)
    stream_s = args.ttft + (plan.stream_tokens - 1) * args.tpot
    models = {"main": MAIN_MODEL, "uneven": UNEVEN_MODEL, "kill": KILL_MODEL}
    steps = build_steps(plan, args.scenarios, models, stream_s)
    logger.warning("run dir %s; pinning sut=%s aux=%s", settings.run_dir, settings.sut_cpus,
                   settings.aux_cpus)  # fmt: skip
    started = time.time()
    with ProcessSet() as procs, LoadGenerator(args.generator_procs, settings.aux_cpus) as gen:
        bench = bring_up(settings, procs)
        runner = Runner(gen, bench.targets, bench.simulators, on_record=log_record,
                        pause_s=args.pause, stages=dict(bench.stages))  # fmt: skip
        for step in steps:
            runner.run_step(step)
    write_outputs(settings, plan, args, runner.records, started, write_docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
