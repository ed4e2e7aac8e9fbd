"""Evaluation throughput: generated images scored per second by the evaluation pipeline (caption
selection, batching, quantisation, feature extraction, accumulation) against the feature extractor's bare
forward at the same batch size. Target: the pipeline adds at most 10%.

    python benchmarks/eval_throughput.py --mode standard --batch-size 16 --images 64

Without --weights, random weights in the real key layout are made in a temporary folder (the numbers of
such a run are throughput only; the extractor is the same size as the real one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch

from t2igan.metrics.context import EvalContext
from t2igan.metrics.evaluate import generated_batches, select_samples, stream
from t2igan.metrics.fid import FIDMetric
from t2igan.metrics.images import to_uint8
from t2igan.metrics.inception import FeatureExtractor, build_extractor, paper_preprocess
from t2igan.specs import Protocol


def random_weights(mode: str, folder: Path) -> Path:
    """Random weights in the layout `mode` reads (torch-fidelity's or torchvision's Inception)."""
    if mode == "standard":
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        # build the module without its download/load: only the key layout matters here
        with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None), \
                mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
                           return_value={}):  # fmt: skip
            model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
        path = folder / "weights-inception-2015-12-05-6726825d.pth"
    elif mode == "paper":
        from torchvision.models import Inception3

        model = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
        path = folder / "inception_v3_google-0cc3c7bd.pth"
    else:
        raise SystemExit("clean mode needs --weights (clean-fid's inception-2015-12-05.pt TorchScript file)")
    torch.save(model.state_dict(), path)
    return path


def bare_forward(extractor: FeatureExtractor, images: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The network alone, on inputs already in its input format."""
    if extractor.info.mode == "standard":
        ready = to_uint8(images)
        return lambda: extractor.model(ready)
    if extractor.info.mode == "paper":
        ready = paper_preprocess(images)

        def run() -> torch.Tensor:
            x = ready
            for block in extractor.blocks:
                x = block(x)
            return x

        return run
    ready = torch.rand(len(images), 3, 299, 299) * 255
    return lambda: extractor.layers((ready - 128) / 128)


def time_bare(extractor: FeatureExtractor, batch: torch.Tensor, batches: int) -> float:
    run = bare_forward(extractor, batch)
    with torch.no_grad():
        run()  # warm-up
        tick = time.perf_counter()
        for _ in range(batches):
            run()
    return time.perf_counter() - tick


def time_pipeline(extractor: FeatureExtractor, batch: torch.Tensor, batches: int) -> float:
    """Seconds of generate + score for `batches` batches through the evaluator (generation costs ~nothing)."""
    size = len(batch)
    records = [{"captions": [f"caption {i} {j}" for j in range(10)]} for i in range(size * batches)]
    protocol = Protocol("quick", ("fid",), batch_size=size, max_images=size * batches, seed=0)

    def generate(captions: list[str], noise_seed: int) -> torch.Tensor:
        return batch[: len(captions)]

    warm = FIDMetric({"extractor": extractor}, EvalContext())
    stream(generated_batches(generate, records, select_samples([10] * size, protocol)[:size], size),
           {"fid": warm}, progress=False)  # fmt: skip
    metric = FIDMetric({"extractor": extractor}, EvalContext())
    samples = select_samples([10] * len(records), protocol)
    seconds = stream(generated_batches(generate, records, samples, size), {"fid": metric}, progress=False)
    return seconds["generate"] + seconds["score"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", default="standard", choices=("standard", "paper", "clean"))
    parser.add_argument("--weights", default=None, help="Inception weights file (default: random, made here)")
    parser.add_argument(
        "--feature", default="2048", help="feature layer (standard/paper): 64, 192, 768, 2048"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=64, help="generated images to score (per measurement)")
    parser.add_argument("--size", type=int, default=64, help="generated image resolution")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=5, help="alternating pairs of measurements; the median ratio counts"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or random_weights(args.mode, Path(folder))
        extractor = build_extractor(args.mode, weights, feature=args.feature)
        batch = torch.rand(args.batch_size, 3, args.size, args.size) * 2 - 1
        batches = max(1, args.images // args.batch_size)
        bare, pipeline = [], []
        for _ in range(args.repeats):  # alternate, so a load change on a shared machine hits both alike
            bare.append(time_bare(extractor, batch, batches))
            pipeline.append(time_pipeline(extractor, batch, batches))
    images = batches * args.batch_size
    bare_rate, pipeline_rate = images / statistics.median(bare), images / statistics.median(pipeline)
    # each pair ran back to back, so its ratio sees one machine load; the median drops the odd pair out
    ratios = sorted(p / b for p, b in zip(pipeline, bare, strict=True))
    overhead = (statistics.median(ratios) - 1) * 100
    print(
        f"mode={args.mode} feature={args.feature} batch={args.batch_size} images={images} "
        f"size={args.size} threads={args.threads} weights={'given' if args.weights else 'random'}"
    )
    print(f"extractor bare forward : {bare_rate:8.2f} images/s")
    print(f"evaluation pipeline    : {pipeline_rate:8.2f} images/s")
    print(
        f"pipeline overhead      : {overhead:+8.2f} %  (target <= 10 %; median of {len(ratios)} pairs, "
        f"range {(ratios[0] - 1) * 100:+.1f} .. {(ratios[-1] - 1) * 100:+.1f} %)"
    )
    if overhead > 10:
        sys.exit("the evaluation pipeline adds more than 10 % to the extractor's own forward")


if __name__ == "__main__":
    main()
