"""A real single-node Slurm for tests: munge, slurmctld and slurmd from Debian's packages,
started in a temporary folder on private ports, stopped afterwards.

    with single_node_slurm() as slurm:
        env = slurm.env  # SLURM_CONF points at this cluster; pass it to sbatch & co.

Runs as root without systemd (what CI and this machine have). ``slurm_missing()`` says why
it cannot run here (binaries absent, not root), for a skip message.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")


def slurm_missing() -> str | None:
    """Why a test Slurm cannot start here, or None when it can."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return (
            f"Slurm is not installed ({', '.join(absent)} missing): apt-get install -y "
            "--no-install-recommends slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        return "the test Slurm runs its daemons as root; run the tests as root (as CI does)"
    return None


@dataclass(frozen=True)
class SlurmCluster:
    """A running single-node cluster: ``env`` makes the Slurm commands talk to it."""

    root: Path
    node: str
    env: dict[str, str]

    def run(self, *argv: str) -> str:
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, check=True, timeout=30
        ).stdout


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _config(root: Path, node: str, ctld_port: int, d_port: int, memory_mb: int) -> str:
    return "\n".join(
        [
            "ClusterName=caipitest",
            f"SlurmctldHost={node}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root}/munge/munge.socket.2",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/slurmctld.log",
            f"SlurmdLogFile={root}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root}/jobcomp.txt",
            "MailProg=/bin/true",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=5",
            "MinJobAge=300",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemFree:"):
            return max(512, int(line.split()[1]) // 1024 // 2)
    return 1024


def _wait_idle(cluster: SlurmCluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        with suppress(subprocess.SubprocessError):
            last = cluster.run("sinfo", "-h", "-o", "%T").strip()
            if last.startswith("idle"):
                return
        time.sleep(0.2)
    log = (cluster.root / "slurmctld.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the test Slurm's node is not idle after {timeout:g} s ({last!r}):\n{log}")


@contextmanager
def single_node_slurm() -> Iterator[SlurmCluster]:
    """Start munge, slurmctld and slurmd in a fresh folder; stop them all and remove it on
    exit. The folder is made under the system's temp folder, world-traversable, because
    munged refuses a socket whose every parent folder is not (pytest's tmp_path is not)."""
    root = Path(tempfile.mkdtemp(prefix="caipi-slurm-"))
    root.chmod(0o755)
    try:
        with _cluster(root) as cluster:
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _cluster(root: Path) -> Iterator[SlurmCluster]:
    node = socket.gethostname().split(".")[0]
    for folder in ("munge", "state", "spool"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o755)  # munged refuses a socket folder only its owner may read
    key = root / "munge" / "munge.key"
    subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
    ctld_port, d_port = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(_config(root, node, ctld_port, d_port, _memory_mb()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(root=root, node=node, env=env)
    munge = root / "munge"
    subprocess.run(
        [
            "munged",
            "-S",
            str(munge / "munge.socket.2"),
            f"--key-file={key}",
            f"--log-file={munge / 'munged.log'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
        ],
        check=True,
        capture_output=True,
    )
    pids = [munge / "munged.pid", root / "slurmctld.pid", root / "slurmd.pid"]
    try:
        subprocess.run(["slurmctld", "-c"], env=env, check=True, capture_output=True)
        subprocess.run(["slurmd", "-c"], env=env, check=True, capture_output=True)
        _wait_idle(cluster)
        yield cluster
    finally:
        with suppress(subprocess.SubprocessError):
            subprocess.run(["scancel", "--full", "-u", "root"], env=env, timeout=10)
        for pid_file in reversed(pids):
            _stop(pid_file)


def _stop(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
