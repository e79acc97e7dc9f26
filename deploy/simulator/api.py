"""Routes of the simulated vLLM server: auth, startup gate, failure injection, handlers.

Behaviour copied from vLLM's OpenAI-compatible server:

- ``--api-key`` guards only paths under ``/v1``; a wrong or missing bearer gets
  401 ``{"error": "Unauthorized"}``. ``/health`` and ``/metrics`` stay open.
- ``POST /tokenize`` counts a prompt or chat as ``usage`` will (``--no-tokenize`` leaves it
  out, as engines other than vLLM have none).
- Unknown paths answer 404 ``{"detail": "Not Found"}`` and known paths with the wrong
  method 405, as FastAPI does.

Simulator-only behaviour:

- During ``--startup-delay`` ``/health`` and every ``/v1`` route answer 503 (``/metrics``
  already answers, with zeros).
- With ``--enable-sleep-mode``: vLLM's sleep endpoints (``deploy/simulator/sleep.py``);
  while the engine sleeps, inference routes answer 503.
- ``--error-rate`` and ``--hang-rate`` are drawn per valid inference request (chat,
  completions, embeddings, rerank): a 500 in vLLM's error shape, or no answer at all (no slot is
  held; the connection just stays silent until the client gives up).
- ``/v1/rerank`` (vLLM's score API for rerankers) scores each
  document by the share of the query's words it contains: deterministic, so a caller's
  re-ranking can be tested.
- ``--die-after N``: the process exits with status 1 right after the N-th inference
  request (valid or not) has ended, cutting off whatever else is in flight.
- ``--die-mid-stream N``: the process exits with status 1 as soon as one stream has sent
  its N-th token (and has more to send), cutting off every stream in flight mid-way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from deploy.simulator.config import SimulatorConfig
from deploy.simulator.engine import Engine, Sequence, Sink
from deploy.simulator.httpserver import Exchange, Request
from deploy.simulator.metrics import CONTENT_TYPE
from deploy.simulator.protocol import (
    ApiError,
    GenerationRequest,
    parse_chat,
    parse_completion,
    parse_embedding,
    parse_json,
    parse_rerank,
    parse_tokenize,
)
from deploy.simulator.responses import (
    StreamSink,
    WholeSink,
    embedding_body,
    models_body,
    rerank_body,
    tokenize_body,
    truncate,
)
from deploy.simulator.sleep import SleepMode
from deploy.simulator.text import embed, overlap_score

logger = logging.getLogger(__name__)

Route = Callable[[Request, Exchange], None]
INFERENCE_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank"}
)
# How long a dying process lets the last response reach the kernel before exiting.
DIE_GRACE_SECONDS = 0.05


def seconds_since_launch() -> float:
    """Seconds since this process was started (Linux: from /proc; elsewhere 0)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


class SimulatorApp:
    """The request handler given to ``httpserver.serve``."""

    def __init__(
        self, config: SimulatorConfig, engine: Engine, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self.engine = engine
        self._loop = loop
        # The delay counts from the process's launch, as a real engine's load time does:
        # the simulator's own imports and set-up are part of it, not added to it.
        self._ready_at = loop.time() + max(0.0, config.startup_delay - seconds_since_launch())
        self._expected_auth = f"Bearer {config.api_key}" if config.api_key else None
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "/health"): self._health,
            ("GET", "/ping"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/rerank"): self._rerank,
        }
        if config.tokenize:
            self._routes[("POST", "/tokenize")] = self._tokenize
        self.sleep_mode = SleepMode(config, engine, loop)
        if config.enable_sleep_mode:
            self._routes[("POST", "/sleep")] = self.sleep_mode.sleep
            self._routes[("POST", "/wake_up")] = self.sleep_mode.wake_up
            self._routes[("GET", "/is_sleeping")] = self.sleep_mode.is_sleeping
        self._paths = {path for _, path in self._routes}

    @property
    def ready(self) -> bool:
        """True once ``--startup-delay`` has passed."""
        return self._loop.time() >= self._ready_at

    def __call__(self, request: Request, exchange: Exchange) -> None:
        route = self._routes.get((request.method, request.path))
        if route is None:
            known = request.path in self._paths
            status = 405 if known else 404
            detail = b"Method Not Allowed" if known else b"Not Found"
            exchange.respond(status, b'{"detail":"' + detail + b'"}')
            return
        if request.path.startswith("/v1") and not self._authorized(request):
            exchange.respond(401, b'{"error":"Unauthorized"}')
            return
        if request.path in INFERENCE_PATHS and self.engine.count_inference_request():
            exchange.on_end = self._die
        try:
            if request.path.startswith("/v1") and not self.ready:
                raise ApiError(503, "The server is starting up (--startup-delay).")
            if request.path in INFERENCE_PATHS and not self.sleep_mode.awake:
                raise ApiError(503, "The engine is sleeping: POST /wake_up first.")
            route(request, exchange)
        except ApiError as error:
            exchange.respond(error.status, error.body())

    def _authorized(self, request: Request) -> bool:
        if self._expected_auth is None:
            return True
        given = request.authorization or ""
        import hmac  # only with --api-key: not worth its import time at every start

        return hmac.compare_digest(given.encode(), self._expected_auth.encode())

    def _die_mid_stream(self) -> None:
        logger.warning(
            "exiting: a stream sent %s tokens (--die-mid-stream)", self.config.die_mid_stream
        )
        self._loop.call_later(DIE_GRACE_SECONDS, os._exit, 1)

    def _die(self) -> None:
        logger.warning("exiting after %s inference requests (--die-after)", self.config.die_after)
        self._loop.call_later(DIE_GRACE_SECONDS, os._exit, 1)

    # -- plain routes ----------------------------------------------------------------

    def _health(self, request: Request, exchange: Exchange) -> None:
        exchange.respond(200 if self.ready else 503, b"")

    def _metrics(self, request: Request, exchange: Exchange) -> None:
        exchange.respond(200, self.engine.metrics.render(), CONTENT_TYPE)

    def _models(self, request: Request, exchange: Exchange) -> None:
        config = self.config
        body = models_body(config.served_model_names, config.model, config.max_model_len)
        exchange.respond(200, body)

    def _tokenize(self, request: Request, exchange: Exchange) -> None:
        if not self.ready:
            raise ApiError(503, "The server is starting up (--startup-delay).")
        tokens = parse_tokenize(parse_json(request.body), self.config)
        exchange.respond(200, tokenize_body(tokens, self.config.max_model_len))

    # -- inference routes ------------------------------------------------------------

    def _chat(self, request: Request, exchange: Exchange) -> None:
        self._generate(parse_chat(parse_json(request.body), self.config), exchange)

    def _completions(self, request: Request, exchange: Exchange) -> None:
        self._generate(parse_completion(parse_json(request.body), self.config), exchange)

    def _inject_fault(self) -> bool:
        """Apply ``--error-rate``/``--hang-rate``; True when the request is taken care of."""
        fate = self.engine.fate()
        if fate == "error":
            raise ApiError(500, "Simulated engine failure (--error-rate).")
        return fate == "hang"

    def _generate(self, request: GenerationRequest, exchange: Exchange) -> None:
        if self._inject_fault():
            return
        plan = self.engine.plan(
            request.prompt,
            max_tokens=request.max_tokens,
            min_tokens=request.min_tokens,
            ignore_eos=request.ignore_eos,
            stop=request.stop,
            offset=request.offset,
        )
        model = self.config.model_name
        sink: Sink | None = StreamSink(exchange, request, model) if request.stream else None
        if sink is not None and self.config.die_mid_stream:
            sink = DyingSink(sink, self.config.die_mid_stream, self._die_mid_stream)
        seq = Sequence(
            prompt_tokens=request.prompt_tokens,
            pieces=plan.pieces,
            finish_reason=plan.finish_reason,
            stop_reason=plan.stop_reason,
            sink=sink or WholeSink(exchange, request, model),
            group=self.config.stream_interval if request.stream else 0,
        )
        exchange.on_abort = lambda: self.engine.cancel(seq)
        if request.stream:
            # vLLM sends headers at once; the body waits for the queue and prefill.
            exchange.start_stream()
        self.engine.submit(seq)

    def _embeddings(self, request: Request, exchange: Exchange) -> None:
        parsed = parse_embedding(parse_json(request.body), self.config)
        if self._inject_fault():
            return
        config = self.config
        vectors = [
            truncate(embed(text, config.embedding_dim, config.seed), parsed.dimensions)
            for text in parsed.inputs
        ]
        prompt_tokens = sum(parsed.token_counts)
        self.engine.metrics.record_prompt_only(prompt_tokens)
        body = embedding_body(
            vectors,
            prompt_tokens,
            config.model_name,
            base64_encoded=parsed.encoding_format == "base64",
        )
        exchange.respond(200, body)

    def _rerank(self, request: Request, exchange: Exchange) -> None:
        parsed = parse_rerank(parse_json(request.body), self.config)
        if self._inject_fault():
            return
        scores = [overlap_score(parsed.query, document) for document in parsed.documents]
        self.engine.metrics.record_prompt_only(parsed.prompt_tokens)
        body = rerank_body(
            parsed.documents, scores, parsed.top_n, parsed.prompt_tokens, self.config.model_name
        )
        exchange.respond(200, body)


class DyingSink:
    """A stream's sink that calls ``die`` once its stream has sent ``tokens`` tokens with
    more still to come (``--die-mid-stream``)."""

    __slots__ = ("_die", "_sink", "_tokens")

    def __init__(self, sink: Sink, tokens: int, die: Callable[[], None]) -> None:
        self._sink = sink
        self._tokens = tokens
        self._die = die

    def __call__(self, seq: Sequence, start: int, end: int) -> None:
        self._sink(seq, start, end)
        if start < self._tokens <= end < len(seq.pieces):
            self._die()
