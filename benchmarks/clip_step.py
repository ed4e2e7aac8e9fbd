"""Contrastive pre-training step of a small CLIP with the text cut after the batch's last EOT (what
`t2igan.text.clip_pretrain` does) against the full context, side by side in one process on the same
batches of `shapes` captions and images. The two give the same loss (the text transformer is causal);
the ratio says how much of a step the padding cost.

    python benchmarks/clip_step.py --model clip-small --batch 128 --threads 2

Needs nothing downloaded: the `shapes` train split is generated (and cached) on first use.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="clip-small")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from t2igan.data.commands import load_split
    from t2igan.text.clip import CLIPSource, CLIPTextImageEncoder, build_open_clip_model, model_config
    from t2igan.text.clip_pretrain import contrastive_loss, images_to_tensor
    from t2igan.text.pretrained import split_arrays

    config = model_config(args.model)
    source = CLIPSource(name=args.model, pretrained="random", model_config=config)
    encoder = CLIPTextImageEncoder(build_open_clip_model(config), None, "clean", source).train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
    train = load_split("shapes", "train")
    images, captions = split_arrays(train, int(config["vision_cfg"]["image_size"]), progress=False)
    rng = np.random.default_rng(0)

    def step(pixels: torch.Tensor, tokens: torch.Tensor) -> float:
        loss = contrastive_loss(
            encoder.image_embedding(pixels),
            encoder.encode({"tokens": tokens}).sentence,
            encoder.model.logit_scale,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return loss.item()

    times: dict[str, list[float]] = {"full": [], "trimmed": []}
    lengths = []
    for repeat in range(args.repeats + 1):  # the first round warms up both
        pick = rng.choice(len(images), args.batch, replace=False)
        pixels = images_to_tensor(images[pick])
        tokens = encoder.tokenize([captions[i][rng.integers(len(captions[i]))] for i in pick])["tokens"]
        trimmed = encoder.trim_tokens(tokens)
        lengths.append(trimmed.shape[1])
        losses = {}
        for side in ("full", "trimmed") if repeat % 2 == 0 else ("trimmed", "full"):
            tick = time.perf_counter()
            losses[side] = step(pixels, tokens if side == "full" else trimmed)
            if repeat:
                times[side].append(time.perf_counter() - tick)
        if abs(losses["full"] - losses["trimmed"]) > 1e-4 * max(1.0, abs(losses["full"])):
            raise SystemExit(f"losses differ: full {losses['full']:.6f}, trimmed {losses['trimmed']:.6f}")
    full, trimmed = (statistics.median(times[k]) for k in ("full", "trimmed"))
    context = int(encoder.context_length)
    print(
        f"{args.model}, batch {args.batch}, {args.threads} threads, {args.repeats} repeats (forward + backward)"
    )
    print(f"text tokens per step: full {context}, trimmed median {statistics.median(lengths):.0f}")
    print(f"median s/step: full {full:.4f}  trimmed {trimmed:.4f}  ratio trimmed/full {trimmed / full:.3f}")


if __name__ == "__main__":
    main()
