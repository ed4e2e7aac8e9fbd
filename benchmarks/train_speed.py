"""Training-step time of our DF-GAN (through the shared Trainer) against the official networks, side by
side in one process on the same batches.

The official side imports `models/GAN.py` (NetG, NetD, NetC) from a checkout of tobran/DF-GAN that you
point to with --official (nothing of it is copied here). Its loss arithmetic is the one of the official
`lib/modules.py train()` — hinge on real / mismatched / fake, MA-GP (2.0, power 6) on images and
sentences, then the G step on the same fakes — restated in `official_step` below because the
official MA_GP hard-codes `.cuda()`. Run:

    python benchmarks/train_speed.py --official /path/to/DF-GAN/code --image-size 64 --batch 16

and read the ratio (ours / official, median over interleaved repeats): above 1 means ours is slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from t2igan.models import build_model, parse_model_ref, resolve
from t2igan.nn.interfaces import Batch, BuildContext, TextFeatures
from t2igan.registry import get_registry
from t2igan.train.trainer import Trainer, TrainerConfig


def official_modules(code_dir: Path, nf: int, z: int, cond: int, size: int):
    if not (code_dir / "models" / "GAN.py").is_file():
        sys.exit(f"--official {code_dir}: expected the DF-GAN `code` folder holding models/GAN.py")
    sys.path.insert(0, str(code_dir))
    from models.GAN import NetC, NetD, NetG  # the official networks, imported from the user's checkout

    return NetG(nf, z, cond, size, 3), NetD(nf, size, 3), NetC(nf, cond)


def official_step(net_g, net_d, net_c, opt_g, opt_d, images, sentence, z_dim: int) -> None:
    """One iteration as DF-GAN code/lib/modules.py `train` runs it (device-agnostic restatement)."""
    images = images.detach().requires_grad_()
    sentence = sentence.detach().requires_grad_()
    real = net_d(images)
    pred_real = net_c(real, sentence)
    err_real = F.relu(1.0 - pred_real).mean()
    err_mis = F.relu(1.0 + net_c(torch.cat((real[1:], real[:1])), sentence)).mean()
    fake = net_g(torch.randn(len(images), z_dim), sentence)
    err_fake = F.relu(1.0 + net_c(net_d(fake.detach()), sentence)).mean()
    grads = torch.autograd.grad(pred_real, (images, sentence), torch.ones_like(pred_real), create_graph=True)
    norm = torch.cat([g.flatten(1) for g in grads], dim=1).norm(dim=1)
    err_d = err_real + (err_fake + err_mis) / 2.0 + 2.0 * (norm**6).mean()
    opt_d.zero_grad()
    err_d.backward()
    opt_d.step()
    err_g = -net_c(net_d(fake), sentence).mean()
    opt_g.zero_grad()
    err_g.backward()
    opt_g.step()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--official", type=Path, required=True, help="DF-GAN checkout's code/ folder")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--nf", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    z, cond = 100, 256  # DF-GAN code/cfg/bird.yml z_dim, cond_dim

    registry = get_registry()
    ref = parse_model_ref(f"dfgan.bird256:nf={args.nf},image_size={args.image_size}")
    ours = build_model(resolve(ref, registry), BuildContext(registry))
    trainer = Trainer(
        ours, None, TrainerConfig(out_dir=Path("/nonexistent"), total_steps=1, lr_g=1e-4, lr_d=4e-4)
    )
    net_g, net_d, net_c = official_modules(args.official, args.nf, z, cond, args.image_size)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(list(net_d.parameters()) + list(net_c.parameters()), lr=4e-4, betas=(0.0, 0.9))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"parameters G ours {count(ours.generator):,} official {count(net_g):,}")

    times: dict[str, list[float]] = {"ours": [], "official": []}
    for repeat in range(args.repeats + 1):  # the first round warms up both
        images = torch.rand(args.batch, 3, args.image_size, args.image_size) * 2 - 1
        sentence = torch.randn(args.batch, cond)
        for side in ("ours", "official") if repeat % 2 == 0 else ("official", "ours"):
            tick = time.perf_counter()
            if side == "ours":
                batch = Batch(images, TextFeatures(sentence))
                trainer.d_step(batch)
                trainer.g_step(batch)
            else:
                official_step(net_g, net_d, net_c, opt_g, opt_d, images, sentence, z)
            if repeat:
                times[side].append(time.perf_counter() - tick)
    ours_median, official_median = (statistics.median(times[k]) for k in ("ours", "official"))
    print(
        f"{args.image_size} px, nf {args.nf}, batch {args.batch}, {args.threads} threads, {args.repeats} repeats"
    )
    print(f"median s/iteration: ours {ours_median:.3f}  official {official_median:.3f}")
    print(f"ratio ours/official: {ours_median / official_median:.3f}")


if __name__ == "__main__":
    main()
