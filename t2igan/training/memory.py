"""Peak memory of one training run, measured the same way for every model in a process that may train
several (a bench plan runs them one after another).

- CUDA: the allocator's peak (`torch.cuda.max_memory_allocated`), reset when the run starts.
- CPU: the process's resident set size sampled by a background thread while the run trains (Linux
  `/proc/self/statm`), its maximum. The process-lifetime high-water mark (`ru_maxrss`) would carry the
  peak of an earlier, larger run into every later record; it is the fallback where /proc is missing,
  and the method says so.
The start value is kept too: `peak - start` is what the run added on top of what the process held.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

SAMPLE_SECONDS = 0.05
STATM = Path("/proc/self/statm")


@dataclass
class PeakMemory:
    peak_bytes: int | None
    start_bytes: int | None
    method: str


def current_rss() -> int | None:
    """Resident set size of this process now, in bytes (None where /proc is missing)."""
    try:
        resident_pages = int(STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _lifetime_peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # not on every platform
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class PeakMemoryMeter:
    """`with PeakMemoryMeter(device) as meter: …` then `meter.result()`."""

    def __init__(self, device: torch.device, interval: float = SAMPLE_SECONDS):
        self.device, self.interval = torch.device(device), interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start: int | None = None
        self._peak: int | None = None

    def __enter__(self) -> PeakMemoryMeter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        self._start = self._peak = current_rss()
        if self._start is not None:
            self._thread = threading.Thread(target=self._sample, name="t2igan-peak-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record(current_rss())

    def _record(self, value: int | None) -> None:
        if value is not None and (self._peak is None or value > self._peak):
            self._peak = value

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._record(current_rss())

    def result(self) -> PeakMemory:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
            return PeakMemory(peak, self._start, "cuda max_memory_allocated, reset at the run's start")
        if self._start is None:
            return PeakMemory(_lifetime_peak_rss(), None, "process lifetime max RSS (no /proc)")
        return PeakMemory(
            self._peak, self._start, f"max RSS sampled every {self.interval:g} s during the run"
        )
