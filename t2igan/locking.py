"""Locks between processes, on one machine or on several that share a folder: operating-system file
locks (`filelock`), which the system releases when their process ends, however it ends, so that a lock
of a killed process never blocks the next one."""

from __future__ import annotations

import logging
import os
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
