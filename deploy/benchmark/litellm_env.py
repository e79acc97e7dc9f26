"""LiteLLM proxy in its own virtualenv: hashed install, offline environment, config file.

LiteLLM is only a point of comparison, so it never enters CAIPI's own environment: the
harness creates ``var/bench/litellm-venv`` on first use and installs the exact, hashed
pins of ``litellm-requirements.txt`` (releases 1.82.7 and 1.82.8 were compromised; the
file pins a later one). The proxy runs without a database, without telemetry and with the
local model cost map, so it never phones home.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

REQUIREMENTS = Path(__file__).with_name("litellm-requirements.txt")
MASTER_KEY = "sk-caipi-bench-master"
ROUTING_STRATEGIES = ("simple-shuffle", "least-busy")

# Environment that keeps LiteLLM offline and light: no cost-map download, no telemetry,
# no database or Redis (the harness does not pass DATABASE_URL/REDIS_URL on).
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def pinned_version(requirements: Path = REQUIREMENTS) -> str:
    """Return the exact litellm version pinned in the requirements file.

    Raises ``ValueError`` when the file holds no ``litellm==X`` line.
    """
    for line in requirements.read_text().splitlines():
        if line.startswith("litellm=="):
            return line.split("==", 1)[1].split()[0]
    raise ValueError(f"no litellm== pin in {requirements}")


def litellm_executable(venv_dir: Path) -> Path:
    """Path of the ``litellm`` console script inside the virtualenv."""
    return venv_dir / "bin" / "litellm"


def ensure_venv(venv_dir: Path, log_path: Path) -> Path:
    """Create the virtualenv and install the hashed pins unless already done.

    A marker file holding the pinned version makes later runs skip the install; a
    changed pin reinstalls. Returns the ``litellm`` executable. Raises
    ``subprocess.CalledProcessError`` when pip fails (its output is in ``log_path``).
    """
    version = pinned_version()
    marker = venv_dir / ".caipi-bench-installed"
    if marker.exists() and marker.read_text().strip() == version:
        return litellm_executable(venv_dir)
    if not (venv_dir / "bin" / "python").exists():
        logger.info("creating %s", venv_dir)
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    logger.info("installing litellm[proxy]==%s with hashes (a few minutes)", version)
    command = [
        str(venv_dir / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--require-hashes",
        "--no-deps",
        "-r",
        str(REQUIREMENTS),
    ]
    with log_path.open("ab") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=1800)
    marker.write_text(version)
    return litellm_executable(venv_dir)


def proxy_config(models: Mapping[str, Sequence[str]], routing_strategy: str) -> dict[str, object]:
    """Build the proxy config: one deployment per simulator URL, grouped by model name.

    ``models`` maps a public model name to its endpoints' base URLs (ending in ``/v1``).
    The config is plain JSON, which YAML loaders read as it is.
    """
    if routing_strategy not in ROUTING_STRATEGIES:
        raise ValueError(f"unknown LiteLLM routing strategy {routing_strategy!r}")
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"hosted_vllm/{name}",
                "api_base": url,
                "api_key": "none",
            },
        }
        for name, urls in models.items()
        for url in urls
    ]
    return {
        "model_list": model_list,
        "router_settings": {"routing_strategy": routing_strategy},
        "litellm_settings": {
            "telemetry": False,
            "drop_params": True,
            "request_timeout": 600,
            "num_retries": 0,
        },
        "general_settings": {"master_key": MASTER_KEY, "disable_spend_logs": True},
    }


def write_config(path: Path, config: Mapping[str, object]) -> Path:
    """Write the config as JSON (valid YAML) and return its path."""
    path.write_text(json.dumps(config, indent=2))
    return path


def proxy_command(executable: Path, config_path: Path, port: int) -> list[str]:
    """Command line of one proxy worker on loopback."""
    return [
        str(executable),
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def proxy_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the proxy: PATH and HOME kept, databases dropped, telemetry off."""
    source = os.environ if base is None else base
    kept = {key: source[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in source}
    return {**kept, **OFFLINE_ENV}


def main() -> None:  # pragma: no cover - manual helper
    """``python -m deploy.benchmark.litellm_env VENV_DIR``: install only."""
    venv_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "var/bench/litellm-venv")
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    print(ensure_venv(venv_dir, venv_dir.parent / "litellm-install.log"))


if __name__ == "__main__":  # pragma: no cover
    main()
