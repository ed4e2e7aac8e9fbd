"""One run, one process: before a bench trains a run it claims the run's folder, so that several
`t2igan bench` processes on one output folder (on one machine, or on several sharing the folder) each
take the runs no other holds.

A claim is an operating-system file lock (`filelock`), which the system releases when its process
ends, however it ends: a claim left by a killed process is free again, and the next process takes the
run over and resumes it from its checkpoint. Beside the lock, `claim.json` says who holds it (host,
pid, since when), for the processes that find it taken.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from t2igan.atomic import write_json_atomic
from t2igan.locking import try_lock

LOCK_FILE = ".claim.lock"
HOLDER_FILE = "claim.json"


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return f"{holder.get('host', '?')} pid {holder.get('pid', '?')} since {since}"


class RunClaim:
    """The claim on one run folder: `acquire()` without waiting, `release()` when the run is done."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._lock: Any = None
        self.previous: dict[str, Any] | None = None  # the holder before us, when we took a claim over

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or, if the lock is free, last held) the claim, as `claim.json` says."""
        try:
            value = json.loads((self.folder / HOLDER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def acquire(self) -> bool:
        """Take the claim if no live process holds it; False when one does."""
        self._lock = try_lock(self.folder / LOCK_FILE)
        if self._lock is None:
            return False
        self.previous = self.holder()  # a holder file under a free lock: its process ended without releasing
        mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        write_json_atomic(self.folder / HOLDER_FILE, mine)
        return True

    def release(self) -> None:
        if self._lock is not None:
            (self.folder / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
