"""How fast the data room is: generating `shapes` at its default size, and images/s the loader delivers
from the cache (batch 16 at 32 px shapes; batch 4 at 256 px from a crop_flip cache stored at 304 px),
with DataLoaders of 0 and 2 workers.

    /work/venv/bin/python benchmarks/data_throughput.py [--quick]

Each loader figure is printed beside what a training step consumes (images/s of DF-GAN `Trainer` steps:
`dfgan.tiny` at 32 px batch 16, `dfgan.bird256` at 256 px batch 4): data loading must never be what the
training waits for, so the ratio loader / consumption must stay well above 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from t2igan.data.cache import ensure_image_cache  # noqa: E402
from t2igan.data.loader import CachedImageDataset, make_dataloader  # noqa: E402
from t2igan.data.shapes import load_shapes_split  # noqa: E402


@dataclass
class Throughput:
    """Steady-state images/s (after each epoch's first batch) and the seconds to each first batch."""

    images_per_second: float
    startup_seconds: float


def loader_throughput(
    dataset: CachedImageDataset, batch_size: int, num_workers: int, min_images: int = 2_000, epoch: int = 0
) -> Throughput:
    """Images per second a DataLoader over `dataset` delivers, whole epochs until `min_images`; the wait
    for each epoch's first batch (worker start-up) is reported apart."""
    delivered, busy, startup = 0, 0.0, 0.0
    while delivered < min_images:
        start = time.perf_counter()
        for batch_index, (images, _, _) in enumerate(
            make_dataloader(dataset, batch_size, epoch=epoch, num_workers=num_workers)
        ):
            now = time.perf_counter()
            if batch_index == 0:
                startup += now - start
            else:
                busy += now - start
                delivered += images.shape[0]
            start = now
        epoch += 1
    return Throughput(delivered / busy, startup)


def training_consumption(model: str, batch_size: int, steps: int = 4) -> float:
    """Images/s a DF-GAN `Trainer` step consumes (D step + G step, random sentences), median of `steps`."""
    import statistics

    from t2igan.models import build_model, parse_model_ref, resolve
    from t2igan.nn.interfaces import Batch, BuildContext, TextFeatures
    from t2igan.registry import get_registry
    from t2igan.training.trainer import Trainer, TrainerConfig

    registry = get_registry()
    resolved = resolve(parse_model_ref(model), registry)
    trainer = Trainer(
        build_model(resolved, BuildContext(registry)),
        None,
        TrainerConfig(out_dir=Path("/nonexistent"), total_steps=1, lr_g=1e-4, lr_d=4e-4),
    )
    size = int(resolved.config["image_size"])
    seconds = []
    for step in range(steps + 1):  # the first step warms up
        batch = Batch(
            torch.rand(batch_size, 3, size, size) * 2 - 1, TextFeatures(torch.randn(batch_size, 256))
        )
        start = time.perf_counter()
        batch = trainer.prepare(batch)  # as `fit` does: on the device, in the trainer's memory format
        trainer.d_step(batch)
        trainer.g_step(batch)
        if step:
            seconds.append(time.perf_counter() - start)
    return batch_size / statistics.median(seconds)


def shapes_generation_seconds(
    cache_root: Path, resolution: int = 64, size: str = "default"
) -> dict[str, float]:
    """Seconds to sample the records and to render the cache of both splits of `shapes`."""
    times = {"records": 0.0, "render": 0.0, "images": 0}
    for split_name in ("train", "test"):
        start = time.perf_counter()
        split = load_shapes_split(None, split_name, size=size)
        split.sha256  # noqa: B018 - the manifest hash is part of preparing a split
        times["records"] += time.perf_counter() - start
        start = time.perf_counter()
        ensure_image_cache(split, resolution, root=cache_root, progress=False)
        times["render"] += time.perf_counter() - start
        times["images"] += len(split)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller splits and fewer images timed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="t2igan-bench-") as tmp:
        root = Path(tmp)
        size = "small" if args.quick else "default"
        gen = shapes_generation_seconds(root / "gen", 64, size)
        print(
            f"shapes size={size} at 64 px: {gen['images']:,} images, records+manifest {gen['records']:.1f} s, "
            f"render into cache {gen['render']:.1f} s, total {gen['records'] + gen['render']:.1f} s"
        )
        min_images = 500 if args.quick else 2_000
        small = load_shapes_split(None, "train", size=1_024 if args.quick else 4_096)
        cache32 = ensure_image_cache(small, 32, root=root, progress=False)
        large = load_shapes_split(None, "test", size=128 if args.quick else 512)
        cache256 = ensure_image_cache(large, 256, augmentation="crop_flip", root=root, progress=False)
        cases = [
            ("shapes 32 px, batch 16", CachedImageDataset(cache32, 10), 16, "dfgan.tiny"),
            (
                "256 px crop_flip (stored 304), batch 4",
                CachedImageDataset(cache256, 10, "crop_flip"),
                4,
                "dfgan.bird256",
            ),
        ]
        for label, dataset, batch, model in cases:
            consumed = training_consumption(model, batch, steps=2 if args.quick else 4)
            print(f"{label:<42} training step ({model}) consumes {consumed:>9,.1f} images/s")
            for workers in (0, 2):
                result = loader_throughput(dataset, batch, workers, min_images // (4 if batch == 4 else 1))
                print(
                    f"{label:<42} workers={workers}: {result.images_per_second:>9,.0f} images/s "
                    f"(first batches after {result.startup_seconds:.2f} s), "
                    f"{result.images_per_second / consumed:,.0f}x the training step's consumption"
                )
    print(f"(cpu count {os.cpu_count()}, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
