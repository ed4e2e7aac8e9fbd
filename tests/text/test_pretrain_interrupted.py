"""Pre-training survives an interrupt and a kill: nothing half-written is taken for a finished encoder,
and the next start says that the earlier pre-training ended before finishing and starts it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from t2igan.atomic import torch_save_atomic
from t2igan.locking import under_way
from tests.conftest import ROOT, run_cli

# a DAMSM pair small enough to pre-train in seconds, with enough epochs to be stopped halfway
TINY_DAMSM = ["epochs=30", "data_image_size=32", "image_size=32", "grid=4", "width=4", "embedding_dim=16"]


def pretrain(cache, *extra):
    args = ["pretrain-encoder", "damsm", "--data", "shapes:size=tiny"]
    for item in TINY_DAMSM:
        args += ["--config", item]
    return [sys.executable, "-m", "t2igan", *args, *extra], {**os.environ, "T2IGAN_CACHE": str(cache)}


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_stopped_pretraining_is_started_again_and_says_so(tmp_path, stop):
    cache = tmp_path / "cache"
    command, env = pretrain(cache)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = cache / "encoders" / "damsm"
    deadline = time.time() + 300
    while time.time() < deadline and not list(folder.glob("*.under-way")):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    time.sleep(0.5)  # into training
    process.send_signal(stop)
    process.wait(timeout=60)
    (mark,) = folder.glob("*.under-way")
    encoder = mark.with_name(mark.name.removesuffix(".under-way"))
    assert not encoder.exists()  # nothing that could pass for a finished encoder
    holder = json.loads(mark.read_text())
    assert holder["pid"] == process.pid

    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"pid {process.pid}, since " in result.stderr
    assert "ended before finishing; starting it again from the beginning" in result.stderr
    assert encoder.is_file() and not mark.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    again = run_cli(*command[3:], env={"T2IGAN_CACHE": str(cache)})
    assert again.returncode == 0 and "cached" in again.stdout and "ended before" not in again.stderr


def test_an_error_that_is_not_an_interrupt_leaves_no_mark(tmp_path):
    target = tmp_path / "probe.pt"
    with pytest.raises(ValueError), under_way(target, "training the probe"):
        raise ValueError("bad labels")
    assert not (tmp_path / "probe.pt.under-way").exists()
    with pytest.raises(KeyboardInterrupt), under_way(target, "training the probe"):
        raise KeyboardInterrupt
    assert (tmp_path / "probe.pt.under-way").exists()
    left = tmp_path / ".probe.pt.k2x9_q1z.tmp"  # what a killed write of the probe leaves
    left.write_bytes(b"half")
    other = tmp_path / ".other.pt.k2x9_q1z.tmp"  # another file's live write: not ours to remove
    other.write_bytes(b"half")
    with under_way(target, "training the probe"):
        torch_save_atomic({"w": torch.zeros(1)}, target)
    assert not left.exists() and other.exists() and target.is_file()
    assert not (tmp_path / "probe.pt.under-way").exists()
