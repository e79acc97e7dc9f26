"""Launchers start and stop engines (`deploy.engines`) somewhere they can serve.

One module per place, each behind `deploy.launchers.base.Launcher` (check, plan, start,
status, stop, logs) and each the only module that talks to its system: `local` (subprocesses
of this machine), `slurm` (sbatch/squeue/scancel), `docker` (the Docker Engine API),
`kubernetes` (the Kubernetes API). `launcher_for` imports a launcher only when it is used,
so the optional clients (docker, kubernetes) are needed only where they are.
"""

from __future__ import annotations

import importlib

from deploy.launchers.base import Launcher

_MODULES = {
    "local": "deploy.launchers.local",
    "slurm": "deploy.launchers.slurm",
    "docker": "deploy.launchers.docker",
    "kubernetes": "deploy.launchers.kubernetes",
}


def launcher_for(kind: str) -> Launcher:
    """The launcher of this kind (``local``, ``slurm``...). Raises KeyError for others."""
    module = importlib.import_module(_MODULES[kind])
    launcher: Launcher = module.LAUNCHER
    return launcher
