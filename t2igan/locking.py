"""Locks between processes, on one machine or on several that share a folder: operating-system file
locks (`filelock`), which the system releases when their process ends, however it ends, so that a lock
of a killed process never blocks the next one."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)


def try_lock(path: str | os.PathLike) -> FileLock | None:
    """The lock file `path`, held, or None when another process holds it. Release it with `.release()`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


@contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the lock file `path` for the block; while another process holds it, wait, and say for what."""
    lock = try_lock(path)
    if lock is None:
        logger.info("waiting for another process, which is making %s (lock %s)", what, path)
        lock = FileLock(path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def under_way(target: str | os.PathLike, what: str) -> Iterator[None]:
    """Mark `target` as being made for the block (call it holding `target`'s lock). A mark found at the
    start is a build whose process ended first (killed, or interrupted): it is said, what its writes left
    is removed, and the build starts again from the beginning. An interrupt (Ctrl-C) leaves the mark for
    the next start to find; an error that is not an interrupt removes it."""
    from t2igan.atomic import remove_temporaries, write_json_atomic

    target = Path(target)
    mark = target.with_name(target.name + ".under-way")
    if mark.exists():
        try:
            earlier = json.loads(mark.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(earlier.get("since", 0))))
        logger.warning(
            "%s: an earlier run of it (%s pid %s, since %s) ended before finishing; starting it again from "
            "the beginning",
            what,
            earlier.get("host", "?"),
            earlier.get("pid", "?"),
            since,
        )
        remove_temporaries(target.parent, target.name)
    write_json_atomic(mark, {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException:
        mark.unlink(missing_ok=True)
        raise
    mark.unlink(missing_ok=True)
