"""Deployment specs: parse and validate one model's spec before anything starts.

A spec is plain data (a YAML document for ``manage.py deploy apply``, a JSON body for the
API, or a ``Deployment`` row exported back). ``spec_parse`` turns it into a ``Spec`` or raises
``SpecInvalid``, a Django ``ValidationError`` whose keys name the offending field the way the
file spells it (``deployment.gpus_per_instance``), so the admin, the API and the command all
show the same message. The launcher of the spec checks its own target (GPUs it has, ports,
a model path that must exist where that can be checked) through ``Launcher.check``.

    name: qwen2.5-7b
    served_name: Qwen/Qwen2.5-7B-Instruct
    deployment:
      engine: vllm
      engine_args: {model_path: /models/qwen2.5-7b, max_model_len: 8192}
      gpus_per_instance: 1
      launcher: local
      target: {gpus: [0, 1], ports: [8100, 8199]}
      min_instances: 0
      max_instances: 2
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from deploy.models import EngineKind, LauncherKind, ModelKind


class SpecInvalid(ValidationError):
    """A spec that cannot run; ``message_dict`` maps each bad field to what is wrong."""


# The engine arguments each engine takes, with the type each must have.
ENGINE_ARGS: dict[str, dict[str, tuple[type, ...]]] = {
    EngineKind.VLLM: {
        "model_path": (str,),
        "tensor_parallel_size": (int,),
        "max_model_len": (int,),
        "gpu_memory_utilization": (float, int),
        "quantization": (str,),
        "extra_args": (list,),
    },
    EngineKind.LLAMACPP: {
        "model_path": (str,),
        "n_ctx": (int,),
        "threads": (int,),
        "extra_args": (list,),
    },
    EngineKind.SIMULATOR: {"options": (list,)},
}
# Engines with vLLM's sleep mode (the simulator imitates it).
SLEEP_ENGINES = (EngineKind.VLLM, EngineKind.SIMULATOR)

SCALING_RULES: dict[str, tuple[type, ...]] = {
    "window_seconds": (int, float),
    "waiting_per_instance": (int, float),
    "queue_time_seconds": (int, float),
    "kv_cache_high": (int, float),
    "running_per_instance_low": (int, float),
    "scale_up_cooldown": (int, float),
    "scale_down_cooldown": (int, float),
}

_WINDOW = re.compile(
    r"^(?P<days>(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?)\s+"
    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)


@dataclass
class Spec:
    """A validated spec: the model's fields and its deployment's, ready to be saved."""

    name: str
    served_name: str
    kind: str = ModelKind.CHAT
    description: str = ""
    engine: str = EngineKind.SIMULATOR
    engine_args: dict[str, Any] = field(default_factory=dict)
    gpus_per_instance: int = 0
    launcher: str = LauncherKind.LOCAL
    target: dict[str, Any] = field(default_factory=dict)
    min_instances: int = 0
    max_instances: int = 1
    scaling: dict[str, Any] = field(default_factory=dict)
    idle_seconds: int = 900
    sleep_level: int = 0
    startup_timeout: int = 600
    warm_windows: list[str] = field(default_factory=list)
    enabled: bool = True

    def deployment_fields(self) -> dict[str, Any]:
        """The ``Deployment`` row's fields."""
        names = [
            "engine",
            "engine_args",
            "gpus_per_instance",
            "launcher",
            "target",
            "min_instances",
            "max_instances",
            "scaling",
            "idle_seconds",
            "sleep_level",
            "startup_timeout",
            "warm_windows",
            "enabled",
        ]
        return {name: getattr(self, name) for name in names}

    def as_document(self) -> dict[str, Any]:
        """The spec as the YAML document ``deploy export`` writes and ``apply`` reads."""
        return {
            "name": self.name,
            "served_name": self.served_name,
            "kind": self.kind,
            "description": self.description,
            "deployment": self.deployment_fields(),
        }


class _Problems:
    """Collects ``field: message`` pairs, then raises them all at once."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.found.setdefault(name, []).append(message)

    def raise_any(self) -> None:
        if self.found:
            raise SpecInvalid(self.found)


def _int(data: dict[str, Any], key: str, default: int, problems: _Problems, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.add(f"{where}{key}", f"must be a whole number of at least 0, not {value!r}")
        return default
    return value


def _choice(value: Any, choices: type[Any], what: str) -> str | None:
    """None when ``value`` is one of ``choices``, else the message naming the options."""
    if value in choices.values:
        return None
    return f"unknown {what} {value!r}; choose one of {', '.join(choices.values)}"


def spec_parse(data: Any) -> Spec:
    """Validate one model's spec document and return it as a ``Spec``.

    Raises SpecInvalid naming every bad field at once. Does not look at the launcher's
    target beyond its shape: ``spec_check`` (below) asks the launcher.
    """
    problems = _Problems()
    if not isinstance(data, dict):
        raise SpecInvalid({"(document)": ["a spec is a mapping with name and deployment"]})
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add("name", "the model's public name is required")
        name = ""
    kind = data.get("kind", ModelKind.CHAT)
    if (message := _choice(kind, ModelKind, "kind")) is not None:
        problems.add("kind", message)
    deployment = data.get("deployment")
    if not isinstance(deployment, dict):
        problems.add("deployment", "the deployment section is required (a mapping)")
        problems.raise_any()
        deployment = {}
    unknown = set(data) - {"name", "served_name", "kind", "description", "deployment"}
    for key in sorted(unknown):
        problems.add(key, "unknown field")
    spec = Spec(
        name=name,
        served_name=str(data.get("served_name") or name),
        kind=str(kind),
        description=str(data.get("description") or ""),
    )
    _parse_deployment(spec, deployment, problems)
    problems.raise_any()
    return spec


def _parse_deployment(spec: Spec, data: dict[str, Any], problems: _Problems) -> None:
    where = "deployment."
    known = set(Spec.__dataclass_fields__) - {"name", "served_name", "kind", "description"}
    for key in sorted(set(data) - known):
        problems.add(f"{where}{key}", "unknown field")
    spec.engine = str(data.get("engine", ""))
    if (message := _choice(data.get("engine"), EngineKind, "engine")) is not None:
        problems.add(f"{where}engine", message)
    spec.launcher = str(data.get("launcher", ""))
    if (message := _choice(data.get("launcher"), LauncherKind, "launcher")) is not None:
        problems.add(f"{where}launcher", message)
    for key in ("gpus_per_instance", "min_instances", "max_instances", "idle_seconds"):
        setattr(spec, key, _int(data, key, getattr(spec, key), problems, where))
    spec.startup_timeout = _int(data, "startup_timeout", spec.startup_timeout, problems, where)
    spec.sleep_level = _int(data, "sleep_level", 0, problems, where)
    spec.enabled = bool(data.get("enabled", True))
    if spec.max_instances < spec.min_instances:
        problems.add(f"{where}max_instances", "must be at least min_instances")
    if spec.max_instances < 1:
        problems.add(f"{where}max_instances", "must be at least 1")
    if spec.startup_timeout < 1:
        problems.add(f"{where}startup_timeout", "must be at least 1 second")
    if spec.sleep_level not in (0, 1, 2):
        problems.add(f"{where}sleep_level", "must be 0 (stop when idle), 1 or 2")
    elif spec.sleep_level and spec.engine not in SLEEP_ENGINES:
        problems.add(f"{where}sleep_level", f"the {spec.engine} engine has no sleep mode")
    spec.engine_args = _mapping(data, "engine_args", problems, where)
    spec.target = _mapping(data, "target", problems, where)
    spec.scaling = _mapping(data, "scaling", problems, where)
    _check_engine_args(spec, problems)
    _check_typed(spec.scaling, SCALING_RULES, problems, f"{where}scaling.")
    spec.warm_windows = _warm_windows(data.get("warm_windows", []), problems, where)


def _mapping(data: dict[str, Any], key: str, problems: _Problems, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        problems.add(f"{where}{key}", "must be a mapping")
        return {}
    return dict(value)


def _check_typed(
    values: dict[str, Any], types: dict[str, tuple[type, ...]], problems: _Problems, where: str
) -> None:
    for key, value in values.items():
        if key not in types:
            problems.add(f"{where}{key}", f"unknown field; known: {', '.join(types)}")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, types[key])):
            names = " or ".join(t.__name__ for t in types[key])
            problems.add(f"{where}{key}", f"must be {names}, not {value!r}")


def _check_engine_args(spec: Spec, problems: _Problems) -> None:
    where = "deployment.engine_args."
    args = spec.engine_args
    _check_typed(args, ENGINE_ARGS.get(spec.engine, {}), problems, where)
    if spec.engine == EngineKind.VLLM:
        if not args.get("model_path"):
            problems.add(f"{where}model_path", "vLLM needs the model's path (or hub id)")
        tensor_parallel = args.get("tensor_parallel_size", 1)
        if isinstance(tensor_parallel, int) and tensor_parallel > max(spec.gpus_per_instance, 1):
            problems.add(
                f"{where}tensor_parallel_size",
                f"{tensor_parallel} needs as many GPUs per instance, "
                f"but gpus_per_instance is {spec.gpus_per_instance}",
            )
        if spec.gpus_per_instance < 1:
            problems.add("deployment.gpus_per_instance", "vLLM needs at least 1 GPU per instance")
        utilisation = args.get("gpu_memory_utilization")
        if isinstance(utilisation, int | float) and not 0 < utilisation <= 1:
            problems.add(f"{where}gpu_memory_utilization", "must be in (0, 1]")
    for key in ("extra_args", "options"):
        values = args.get(key)
        if isinstance(values, list) and not all(isinstance(v, str) for v in values):
            problems.add(f"{where}{key}", "must be a list of strings")


def _warm_windows(value: Any, problems: _Problems, where: str) -> list[str]:
    if not isinstance(value, list):
        problems.add(f"{where}warm_windows", "must be a list such as ['mon-fri 08:00-18:00']")
        return []
    for index, window in enumerate(value):
        if not isinstance(window, str) or not _WINDOW.match(window.strip().lower()):
            problems.add(
                f"{where}warm_windows[{index}]",
                f"{window!r} is not like 'mon-fri 08:00-18:00' (days, then from-to in UTC)",
            )
    return [str(w).strip().lower() for w in value]


def spec_check(spec: Spec) -> None:
    """Ask the spec's launcher whether its target can run it (GPUs it has, a model path
    that exists where that can be checked, ports). Raises SpecInvalid naming the field."""
    from deploy.launchers import launcher_for

    problems = _Problems()
    for name, message in launcher_for(spec.launcher).check(spec):
        problems.add(name, message)
    problems.raise_any()
