"""Starting the cluster's processes in the background and stopping them again by their id.

Each process gets its own session (so a Ctrl-C at the terminal that ran ``up`` reaches none
of them), its own log file, and ``GRIDMGR_CLUSTER_FOLDER`` in its environment. A recorded id
counts as that process only while the process runs with that variable still naming the
cluster folder, so a recycled id is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

MARKER = "GRIDMGR_CLUSTER_FOLDER"


def start(argv: Sequence[str], log: Path, folder: Path, *, env: dict | None = None,
          user: str | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` detached as a process of the cluster in ``folder``, output appended to
    ``log``; its process id."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**(env or os.environ), MARKER: str(folder)}
    extra: dict = {}
    if user:
        entry = pwd.getpwnam(user)
        extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        env.update({"HOME": entry.pw_dir, "USER": user})
    with open(log, "ab") as out:
        process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                   start_new_session=True, **extra)
    return process.pid


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status when it is our own child, so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def is_running(pid: int | None, folder: Path) -> bool:
    """Whether ``pid`` runs as a process of the cluster in ``folder``."""
    if not pid or not _alive(pid):
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{MARKER}={folder}".encode() in environ


def stop(pids: dict[str, int], folder: Path, timeout: float = 30.0) -> list[str]:
    """SIGTERM each named process of the cluster at once, SIGKILL those still running after
    ``timeout`` seconds; the names of those that were running."""
    running = {name: pid for name, pid in pids.items() if is_running(pid, folder)}
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(is_running(p, folder) for p in running.values()):
        time.sleep(0.1)
    for pid in running.values():
        if is_running(pid, folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(is_running(p, folder) for p in running.values()):
        time.sleep(0.05)
    return list(running)


def postmaster_pid(datadir: Path) -> int | None:
    """The running postmaster of ``datadir`` (first line of ``postmaster.pid``), if any."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if str(datadir).encode() in cmdline else None
