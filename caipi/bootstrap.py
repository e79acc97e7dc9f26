"""Make ``python3 manage.py ...`` work on a fresh machine that has nothing but Python.

Standard library only: this runs before any dependency is installed.

1. Inside the project's virtualenv: make sure the installed packages match pyproject.toml
   (reinstall when it changed), then carry on.
2. Inside another virtualenv that already has Django, or with ``CAIPI_NO_BOOTSTRAP=1``:
   carry on; the operator manages that environment.
3. Otherwise: create ``.venv`` (or ``CAIPI_VENV``), install CAIPI with its test extras into it,
   and re-run the same command with the virtualenv's Python.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
EXTRAS = "test"


def venv_dir() -> Path:
    return Path(os.environ.get("CAIPI_VENV", BASE_DIR / ".venv")).resolve()


def ensure_virtualenv(argv: list[str]) -> None:
    """Return when the current interpreter can run CAIPI; otherwise prepare .venv and exec it."""
    if os.environ.get("CAIPI_NO_BOOTSTRAP") == "1":
        return
    target = venv_dir()
    if Path(sys.prefix).resolve() == target:
        _install_if_stale(target)
        return
    if sys.prefix != sys.base_prefix and importlib.util.find_spec("django") is not None:
        return
    python = _venv_python(target)
    if not python.exists():
        print(f"caipi: creating the virtualenv {target} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(target)
    _install_if_stale(target)
    os.execv(str(python), [str(python), *argv])  # noqa: S606 - re-run in the virtualenv


def _venv_python(target: Path) -> Path:
    return target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint() -> str:
    digest = hashlib.sha256((BASE_DIR / "pyproject.toml").read_bytes())
    digest.update(EXTRAS.encode())
    return digest.hexdigest()


def _install_if_stale(target: Path) -> None:
    stamp = target / ".caipi-installed"
    wanted = _fingerprint()
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return
    print(f"caipi: installing CAIPI and its dependencies into {target} ...", flush=True)
    python = str(_venv_python(target))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{BASE_DIR}[{EXTRAS}]"], check=True)
    stamp.write_text(wanted)
