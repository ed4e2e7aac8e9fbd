"""Peak memory per run: a run's figure is its own, not the process's high-water mark from an earlier run."""

from __future__ import annotations

import mmap
import time

import torch

from t2igan.training import memory
from t2igan.training.memory import PeakMemoryMeter


def _hold(megabytes: int, seconds: float) -> None:
    """Raise the resident set by `megabytes` for `seconds`: fresh anonymous pages, each touched. (A tensor
    could reuse heap pages an earlier test freed but the allocator kept resident, raising nothing.)"""
    size = megabytes * 2**20
    block = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    time.sleep(seconds)
    block.close()


def test_a_run_gets_its_own_peak_not_the_largest_earlier_one():
    with PeakMemoryMeter(torch.device("cpu"), interval=0.01) as big:
        _hold(256, 0.5)  # long enough for the sampler on a busy machine
    with PeakMemoryMeter(torch.device("cpu"), interval=0.01) as small:
        _hold(16, 0.2)
    big_result, small_result = big.result(), small.result()
    assert big_result.peak_bytes - big_result.start_bytes > 200 * 2**20
    assert small_result.peak_bytes - small_result.start_bytes < 100 * 2**20
    assert small_result.peak_bytes < big_result.peak_bytes  # the lifetime max RSS would repeat the big one
    assert "sampled" in small_result.method


def test_without_proc_the_figure_says_it_is_the_process_lifetime_peak(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "STATM", tmp_path / "no-statm")
    with PeakMemoryMeter(torch.device("cpu")) as meter:
        pass
    result = meter.result()
    assert result.start_bytes is None and result.peak_bytes > 0 and "lifetime" in result.method
