"""The simulator's options, fixed for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutputDist = Literal["fixed", "uniform", "exponential"]

# vLLM's paged KV cache hands out blocks of 16 token slots; the simulator
# accounts usage in the same unit so kv_cache_usage_perc moves like vLLM's.
KV_BLOCK_SIZE = 16


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything that shapes the simulated engine's behaviour.

    Times are in seconds, rates are fractions in [0, 1]. ``served_model_names``
    is never empty: the first name is the one reported in responses and metrics,
    as vLLM does with ``--served-model-name``.
    """

    model: str
    served_model_names: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    ttft: float = 0.05
    tpot: float = 0.02
    output_tokens: int = 64
    output_dist: OutputDist = "fixed"
    max_num_seqs: int = 256
    max_model_len: int = 8192
    slowdown: float = 0.0
    stream_interval: int = 1
    kv_cache_blocks: int = 8192
    error_rate: float = 0.0
    hang_rate: float = 0.0
    die_after: int | None = None
    die_mid_stream: int | None = None
    startup_delay: float = 0.0
    enable_sleep_mode: bool = False
    sleep_time: float = 0.5
    wake_time: float = 1.0
    seed: int = 0
    embedding_dim: int = 384
    legacy_metrics: bool = False
    tokenize: bool = True

    def __post_init__(self) -> None:
        if not self.served_model_names:
            object.__setattr__(self, "served_model_names", (self.model,))
        self._check()

    @property
    def model_name(self) -> str:
        """The name responses and metrics carry (vLLM uses the first served name)."""
        return self.served_model_names[0]

    def _check(self) -> None:
        problems = [
            message
            for ok, message in (
                (self.ttft >= 0 and self.tpot >= 0, "ttft and tpot must be >= 0"),
                (self.output_tokens >= 1, "output-tokens must be >= 1"),
                (self.max_num_seqs >= 1, "max-num-seqs must be >= 1"),
                (self.max_model_len >= 2, "max-model-len must be >= 2"),
                (self.stream_interval >= 1, "stream-interval must be >= 1"),
                (self.kv_cache_blocks >= 1, "kv-cache-blocks must be >= 1"),
                (0 <= self.error_rate <= 1, "error-rate must be in [0, 1]"),
                (0 <= self.hang_rate <= 1, "hang-rate must be in [0, 1]"),
                (self.error_rate + self.hang_rate <= 1, "error-rate + hang-rate must be <= 1"),
                (self.die_after is None or self.die_after >= 1, "die-after must be >= 1"),
                (
                    self.die_mid_stream is None or self.die_mid_stream >= 1,
                    "die-mid-stream must be >= 1",
                ),
                (self.slowdown >= 0 and self.startup_delay >= 0, "slowdown/startup-delay >= 0"),
                (self.sleep_time >= 0 and self.wake_time >= 0, "sleep-time/wake-time >= 0"),
                (self.embedding_dim >= 1, "embedding-dim must be >= 1"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("; ".join(problems))
