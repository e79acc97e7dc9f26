"""vLLM's sleep mode, simulated: ``POST /sleep?level=N``, ``POST /wake_up``, ``GET /is_sleeping``.

vLLM serves these development endpoints when started with ``--enable-sleep-mode`` and
``VLLM_SERVER_DEV_MODE=1``; the simulator serves them with ``--enable-sleep-mode``
(without it they answer 404, as vLLM's do outside development mode).

- ``POST /sleep?level=1|2`` answers 200 after ``--sleep-time`` seconds; from the moment it
  arrives the engine takes no new inference requests. vLLM aborts requests still running
  when it goes to sleep (or crashes, in older versions); the simulator refuses instead,
  with 400, while any request runs or waits — so a test notices a caller that sleeps a busy
  engine rather than losing calls quietly.
- ``POST /wake_up`` answers 200 once awake, ``--wake-time`` seconds after the first wake
  call (a second call while waking answers at the same moment); awake already: at once.
- ``GET /is_sleeping`` answers ``{"is_sleeping": true}`` from the end of the sleep until the
  end of the wake, as vLLM does.
- While not awake, every ``/v1`` inference request answers 503 with a message saying the
  engine sleeps (vLLM versions differ here: some crash or hang; CAIPI never sends calls to
  an endpoint it put to sleep). ``/health``, ``/metrics`` and ``/v1/models`` keep answering.
"""

from __future__ import annotations

import asyncio
import enum
from urllib.parse import parse_qs

from deploy.simulator.config import SimulatorConfig
from deploy.simulator.engine import Engine
from deploy.simulator.httpserver import Exchange, Request


class Phase(enum.Enum):
    """Where the engine is in its sleep cycle."""

    AWAKE = "awake"
    FALLING_ASLEEP = "falling_asleep"
    ASLEEP = "asleep"
    WAKING = "waking"


class SleepMode:
    """The sleep state of one simulated engine; single-threaded (event loop only)."""

    def __init__(
        self, config: SimulatorConfig, engine: Engine, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self.engine = engine
        self._loop = loop
        self.phase = Phase.AWAKE
        self.level = 0
        self._woken_at = 0.0  # loop time the wake in progress ends

    @property
    def awake(self) -> bool:
        return self.phase is Phase.AWAKE

    def sleep(self, request: Request, exchange: Exchange) -> None:
        """``POST /sleep?level=N``."""
        levels = parse_qs(request.query).get("level", ["1"])
        if levels[-1] not in ("1", "2"):
            exchange.respond(400, _error("level must be 1 or 2"))
            return
        if self.phase in (Phase.ASLEEP, Phase.FALLING_ASLEEP):
            exchange.respond(200, b"")
            return
        if self.phase is Phase.WAKING or self.engine.busy:
            what = "is waking up" if self.phase is Phase.WAKING else "has requests running"
            exchange.respond(400, _error(f"cannot sleep: the engine {what}"))
            return
        self.phase = Phase.FALLING_ASLEEP
        self.level = int(levels[-1])
        self._loop.call_later(self.config.sleep_time, self._asleep, exchange)

    def _asleep(self, exchange: Exchange) -> None:
        self.phase = Phase.ASLEEP
        exchange.respond(200, b"")

    def wake_up(self, request: Request, exchange: Exchange) -> None:
        """``POST /wake_up``."""
        if self.phase is Phase.AWAKE:
            exchange.respond(200, b"")
            return
        now = self._loop.time()
        if self.phase is not Phase.WAKING:
            # Waking while still falling asleep first finishes falling asleep.
            self.phase = Phase.WAKING
            self._woken_at = now + self.config.wake_time
            self._loop.call_at(self._woken_at, self._awake)
        self._loop.call_at(self._woken_at, exchange.respond, 200, b"")

    def _awake(self) -> None:
        self.phase = Phase.AWAKE
        self.level = 0

    def is_sleeping(self, request: Request, exchange: Exchange) -> None:
        """``GET /is_sleeping``."""
        sleeping = self.phase in (Phase.ASLEEP, Phase.WAKING)
        exchange.respond(200, b'{"is_sleeping":' + (b"true" if sleeping else b"false") + b"}")


def _error(message: str) -> bytes:
    return (
        b'{"error":{"message":"' + message.encode() + b'","type":"BadRequestError",'
        b'"param":null,"code":400}}'
    )
