"""torchrun support: two CPU processes (gloo) share one batch, average their gradients and stay in step;
only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from t2igan.nn.interfaces import Batch, TextFeatures
from t2igan.training import distributed
from tests.conftest import ROOT, TINY_ENCODER_SETTINGS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)  # different initial weights on each rank
        layer = nn.Linear(3, 2)
        distributed.broadcast_module(layer)
        same_start = distributed.ranks_agree(layer)
        layer.weight.grad = torch.full_like(layer.weight, float(rank + 1))  # 1 on rank 0, 2 on rank 1
        layer.bias.grad = torch.full_like(layer.bias, 10.0 * rank)
        distributed.average_gradients(list(layer.parameters()))
        batch = Batch(
            torch.arange(4.0).view(4, 1, 1, 1),
            TextFeatures(torch.arange(4.0).view(4, 1), None, torch.zeros(4, 2, dtype=torch.bool)),
            ["a", "b", "c", "d"],
            {"class_ids": torch.tensor([10, 11, 12, 13]), "note": "kept"},
        )
        mine = distributed.shard_batch(batch)
        with torch.no_grad():
            layer.weight.add_(rank)  # now the replicas differ
        results[rank] = {
            "same_start": same_start,
            "weight_grad": layer.weight.grad.unique().tolist(),
            "bias_grad": layer.bias.grad.unique().tolist(),
            "images": mine.images.flatten().tolist(),
            "captions": mine.captions,
            "class_ids": mine.extras["class_ids"].tolist(),
            "note": mine.extras["note"],
            "mask_rows": len(mine.text.mask),
            "agree_after_drift": distributed.ranks_agree(layer),
            "finite_when_one_rank_is_nan": distributed.all_finite(
                torch.tensor(float("nan") if rank else 1.0)
            ),
            "finite_when_all_are": distributed.all_finite(torch.tensor(1.0)),
        }
    finally:
        dist.destroy_process_group()


def test_two_processes_average_gradients_split_the_batch_and_agree_on_drift_and_nan():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), results), nprocs=2, join=True)
        got = dict(results)
    for rank in (0, 1):
        assert got[rank]["same_start"] is True  # rank 0's weights broadcast to rank 1
        assert got[rank]["weight_grad"] == [1.5] and got[rank]["bias_grad"] == [5.0]  # the mean
        assert got[rank]["agree_after_drift"] is False
        # a NaN on rank 1 stops rank 0 too, at the same step
        assert got[rank]["finite_when_one_rank_is_nan"] is False and got[rank]["finite_when_all_are"] is True
        assert got[rank]["note"] == "kept" and got[rank]["mask_rows"] == 2
    assert got[0]["images"] == [0.0, 2.0] and got[1]["images"] == [1.0, 3.0]
    assert got[0]["captions"] == ["a", "c"] and got[1]["captions"] == ["b", "d"]
    assert got[0]["class_ids"] == [10, 12] and got[1]["class_ids"] == [11, 13]


def test_shard_batch_is_the_identity_in_one_process():
    batch = Batch(torch.zeros(3, 1, 1, 1), TextFeatures(torch.zeros(3, 1)), ["a", "b", "c"])
    assert distributed.shard_batch(batch) is batch


@pytest.fixture(scope="module")
def torchrun_train(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    settings = folder / "settings.toml"
    settings.write_text(TINY_ENCODER_SETTINGS, encoding="utf-8")
    out = folder / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "t2igan",
        "train",
        "--model",
        "dfgan",
        "--data",
        "shapes:size=tiny",
        "--steps",
        "3",
        "--plan",
        str(settings),
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    env = {**os.environ, "T2IGAN_CACHE": str(folder / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    return result, out


def test_torchrun_trains_one_run_written_once_by_rank_zero(torchrun_train):
    result, out = torchrun_train
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 3 steps") == 1 and "on 2 process(es)" in result.stdout
    steps = [json.loads(line)["step"] for line in (out / "train" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 3  # one writer: no line twice
    checkpoint = torch.load(out / "train" / "final.pt", map_location="cpu", weights_only=True)
    assert checkpoint["progress"]["step"] == 3
    assert (out / "train" / "samples" / "final.png").is_file()


def test_the_cli_leaves_the_process_group_it_ran_in(tmp_path, capsys):
    from t2igan.cli import main

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["models", "dfgan", "--json"]) == 0
        assert not dist.is_initialized()  # destroyed by the command, not left to interpreter exit
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    capsys.readouterr()
