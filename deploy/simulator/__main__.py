"""Command line: ``python -m deploy.simulator --port PORT --model NAME [options]``.

Runs a simulated vLLM OpenAI-compatible server until SIGINT/SIGTERM. See
``deploy/simulator/__init__.py`` for what it simulates.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from deploy.simulator.config import SimulatorConfig

logger = logging.getLogger("deploy.simulator")


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser; option names follow vLLM's where vLLM has one."""
    p = argparse.ArgumentParser(prog="python -m deploy.simulator", description=__doc__)
    add = p.add_argument
    add("--model", required=True, help="model name (vLLM: path or HF id)")
    add("--served-model-name", nargs="+", default=None, help="names clients may use")
    add("--host", default="127.0.0.1", help="bind address (vLLM binds all; use 0.0.0.0)")
    add("--port", type=int, default=8000)
    add("--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1")
    add("--ttft", type=float, default=0.05, help="seconds from admission to first token")
    add("--tpot", type=float, default=0.02, help="seconds per further output token")
    add("--output-tokens", type=int, default=64, help="mean answer length in tokens")
    add("--output-dist", choices=("fixed", "uniform", "exponential"), default="fixed")
    add("--max-num-seqs", type=int, default=256, help="running slots; the rest wait")
    add("--max-model-len", type=int, default=8192, help="context window in tokens")
    add("--slowdown", type=float, default=0.0, help="tpot x (1 + S x running/max-num-seqs)")
    add("--stream-interval", type=int, default=1, help="tokens per streamed chunk")
    add("--kv-cache-blocks", type=int, default=8192, help="KV cache size in 16-token blocks")
    add("--error-rate", type=float, default=0.0, help="fraction answered with 500")
    add("--hang-rate", type=float, default=0.0, help="fraction never answered")
    add("--die-after", type=int, default=None, help="exit(1) after N inference requests")
    add("--die-mid-stream", type=int, default=None, help="exit(1) once a stream sent N tokens")
    add("--startup-delay", type=float, default=0.0, help="seconds of 503 before ready")
    add("--enable-sleep-mode", action="store_true", help="serve /sleep, /wake_up, /is_sleeping")
    add("--sleep-time", type=float, default=0.5, help="seconds POST /sleep takes")
    add("--wake-time", type=float, default=1.0, help="seconds POST /wake_up takes")
    add("--seed", type=int, default=0)
    add("--embedding-dim", type=int, default=384)
    add("--legacy-metrics", action="store_true", help="export vllm:gpu_cache_usage_perc")
    add(
        "--no-tokenize",
        dest="tokenize",
        action="store_false",
        help="offer no /tokenize (as engines other than vLLM)",
    )
    add("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def config_from_args(argv: Sequence[str] | None = None) -> tuple[SimulatorConfig, str]:
    """Parse ``argv`` into a config and the log level; exits with 2 on bad options."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values = vars(args)
    log_level = values.pop("log_level")
    values["served_model_names"] = tuple(values.pop("served_model_name") or ())
    try:
        return SimulatorConfig(**values), log_level
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


async def run(config: SimulatorConfig) -> None:
    """Serve until SIGINT or SIGTERM."""
    # Imported here, not at the top: ``--help`` and bad options answer without them.
    from deploy.simulator.api import SimulatorApp
    from deploy.simulator.engine import Engine
    from deploy.simulator.httpserver import serve

    loop = asyncio.get_running_loop()
    engine = Engine(config, loop)
    server = await serve(SimulatorApp(config, engine, loop), config.host, config.port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info(
        "vLLM simulator serving %s on http://%s:%s (ttft=%ss tpot=%ss max-num-seqs=%s)",
        config.model_name,
        config.host,
        config.port,
        config.ttft,
        config.tpot,
        config.max_num_seqs,
    )
    await stop.wait()
    logger.info("shutting down")
    server.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: parse options, pick uvloop when installed, run."""
    config, log_level = config_from_args(argv)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        import uvloop
    except ImportError:  # still works, just slower
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(config))


if __name__ == "__main__":
    main(sys.argv[1:])
