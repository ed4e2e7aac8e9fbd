"""Costs measured the same way for every model: parameters per part (trainable and frozen), training
time per step, inference images/s at the preset's resolution and batch size, and peak memory."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from t2igan.nn.interfaces import GANModel, TextFeatures, count_parameters
from t2igan.training.trainer import TrainResult


def parameter_costs(model: GANModel) -> dict[str, dict[str, int]]:
    return {part: count_parameters(module) for part, module in model.parameter_groups().items()}


@torch.no_grad()
def inference_throughput(
    model: GANModel, text: TextFeatures, device: torch.device, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Images per second of `model.generate` on one batch (the text's batch size), median of `repeats`."""
    was_training = model.training
    model.eval()
    batch = len(text.sentence)
    text = TextFeatures(
        text.sentence.to(device),
        None if text.words is None else text.words.to(device),
        None if text.mask is None else text.mask.to(device),
    )
    seconds: list[float] = []
    for i in range(warmup + repeats):
        noise = model.sample_noise(batch)
        _synchronise(device)
        tick = time.perf_counter()
        model.generate(noise, text)
        _synchronise(device)
        if i >= warmup:
            seconds.append(time.perf_counter() - tick)
    model.train(was_training)
    median = statistics.median(seconds)
    return {"images_per_second": batch / median, "batch_size": batch, "seconds_per_batch": median}


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_costs(model: GANModel, train_result: TrainResult, throughput: dict[str, float]) -> dict[str, Any]:
    return {
        "parameters": parameter_costs(model),
        "train_seconds": train_result.train_seconds,
        "step_seconds_median": train_result.step_seconds_median,
        "steps": train_result.steps,
        "resumed_from": train_result.resumed_from,
        "peak_memory_bytes": train_result.peak_memory_bytes,
        "peak_memory_start_bytes": train_result.peak_memory_start_bytes,
        "peak_memory_method": train_result.peak_memory_method,
        **throughput,
    }
