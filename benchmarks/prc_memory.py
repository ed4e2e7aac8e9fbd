"""Peak memory and time of precision/recall at paper scale: t2igan's blocked k-NN distances against
torch-fidelity's full N x N matrices, on random features (the memory depends on the counts only).

    python benchmarks/prc_memory.py --images 30000 --dims 2048 --threads 2
    python benchmarks/prc_memory.py --images 30000 --skip-full    # the full matrices need about 15 GB

Each way runs in a fresh process, so one peak cannot hide in another's. The peak is the resident set
size sampled every 0.05 s (t2igan.training.memory), minus what the process held before the call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch


def measure(way: str, images: int, dims: int, block: int) -> dict[str, float]:
    from torch_fidelity.metric_prc import prc_features_to_metric

    from t2igan.metrics.kid_is_pr import precision_recall
    from t2igan.training.memory import PeakMemoryMeter

    g = torch.Generator().manual_seed(0)
    fake = torch.randn(images, dims, generator=g)
    real = torch.randn(images, dims, generator=g)  # the same distribution, another draw
    start = time.perf_counter()
    with PeakMemoryMeter(torch.device("cpu")) as meter:
        if way == "blocked":
            scores = precision_recall(fake, real, block=block)
        else:
            out = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False,
                                         verbose=False)  # fmt: skip
            scores = {"precision": float(out["precision"]), "recall": float(out["recall"])}
    peak = meter.result()
    added = (peak.peak_bytes or 0) - (peak.start_bytes or 0)
    return {"seconds": time.perf_counter() - start, "added_bytes": added, **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30000, help="images per side")
    parser.add_argument("--dims", type=int, default=2048, help="feature size (Inception pool: 2048)")
    parser.add_argument("--block", type=int, default=None, help="rows per block (t2igan's PRC_BLOCK)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--skip-full", action="store_true", help="measure the blocked way only")
    parser.add_argument("--child", choices=("blocked", "full"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.block is None:
        from t2igan.metrics.kid_is_pr import PRC_BLOCK

        args.block = PRC_BLOCK
    if args.child:
        print(json.dumps(measure(args.child, args.images, args.dims, args.block)))
        return
    print(f"{args.images:,} images per side, {args.dims} dims, block {args.block}, {args.threads} thread(s)")
    for way in ("blocked",) if args.skip_full else ("blocked", "full"):
        command = [sys.executable, __file__, "--child", way, *sys.argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(
                f"  {way}: failed ({done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode})"
            )
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  {way:8s} peak added {result['added_bytes'] / 2**30:6.2f} GiB  {result['seconds']:7.1f} s  "
            f"precision {result['precision']:.4f}  recall {result['recall']:.4f}"
        )


if __name__ == "__main__":
    main()
