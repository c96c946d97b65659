"""Peak memory and CPU time of a functions-framework server: its gunicorn master and worker(s).

Found through /proc, not through FunctionProcess internals: the master is this process's
child whose command line names the port; the workers are the master's children.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class PeakRss:
    master_kib: int
    worker_kib: int  # the largest worker's (functions-framework runs one by default)
    # CPU the master and its workers have used so far (user + system): unlike wall time, what
    # other processes on a busy machine take does not count, so it compares subjects steadily.
    cpu_seconds: float


def peak_rss(port: int) -> PeakRss:
    master = _master_pid(port)
    workers = [pid for pid, parent in _children() if parent == master]
    if not workers:
        raise RuntimeError(f"the server on port {port} (pid {master}) has no worker process")
    return PeakRss(
        master_kib=_vm_hwm_kib(master),
        worker_kib=max(_vm_hwm_kib(pid) for pid in workers),
        cpu_seconds=sum(_cpu_seconds(pid) for pid in (master, *workers)),
    )


def _master_pid(port: int) -> int:
    marker = f"--port\0{port}\0".encode()
    for pid, parent in _children():
        if parent == os.getpid() and marker in _read_bytes(PROC / str(pid) / "cmdline"):
            return pid
    raise RuntimeError(f"no functions-framework child of this process serves port {port}")


def _children() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process still readable."""
    pairs = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _read_bytes(entry / "stat")
            if stat:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
                pairs.append((int(entry.name), int(stat.rsplit(b")", 1)[1].split()[1])))
    return pairs


def _vm_hwm_kib(pid: int) -> int:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of /proc/PID/stat (fields 14 and 15, in clock ticks)."""
    fields = _read_bytes(PROC / str(pid) / "stat").rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended between listing and reading
        return b""
