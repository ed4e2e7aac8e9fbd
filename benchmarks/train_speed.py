"""Training-step time and generation speed of our DF-GAN and RAT-GAN (through the shared Trainer), and,
when given the official checkouts, of the official networks measured the same way in the same process.

Configurations: `tiny` (the `tiny` presets, batch 16) and `bird` (the paper presets `dfgan.bird256`,
`ratgan.bird256`, batch 4). Per round both sides get the same random images, sentences and generation
noise; the side that goes first alternates; the first `--warmup` rounds are not recorded. A training
step is one D update (hinge + MA-GP) and one G update; generation is the generator in eval mode without
gradients on the same batch. Printed: medians, and the ratio ours / official of the times (above 1.0:
ours is slower). A step-time ratio above 1.0 is flagged and the exit status is 1. Our side trains as the
Trainer does by default, 4-D weights and batch images in channels_last (NHWC) memory; `--memory-format
both` adds our NCHW path as a third side, for the ratio of the two. Run:

    python benchmarks/train_speed.py --official /path/to/DF-GAN/code --ratgan-official /path/to/RAT-GAN/code

The official networks are imported from the checkouts at run time (nothing of them is copied here); the
official loss arithmetic is restated, because the official loops hard-code `.cuda()`:
  * DF-GAN (`models/GAN.py` NetG, NetD, NetC): code/lib/modules.py `train` and `MA_GP` — hinge on real,
    fake and mismatched (real features rolled by one) plus MA-GP (2.0, power 6) in one D step, then the
    G step on the same fakes; D and C share one Adam (code/src/train.py).
  * RAT-GAN (`model.py` NetG, NetD; `DAMSM.py` CustomLSTM): code/main.py `train` — hinge D step (B-1
    shifted mismatched pairs), then MA-GP on a fresh D pass as its own optimiser step, then the G step
    on the fakes of the D step; `netG.lstm.init_hidden(noise)` before each generator call.
    DAMSM.py imports miscc/config.py, which needs `easydict`: when it is not installed a dict with
    attribute access stands in. The official NetG / NetD exist at 256 px only; at a smaller image size
    (the `tiny` preset, 32 px) they run truncated to our channel plan: NetG.fc, block0, then the last
    levels-1 blocks and conv_img; NetD.conv_img and its first levels-1 blocks; COND_DNET's first conv
    re-made for the channels reached. The printed parameter counts (those that received a gradient)
    show that both sides then train the same shapes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

# run as a script: benchmarks/ is on sys.path; the official-checkout imports are shared with the parity check
from official_parity import import_from_checkout, standin_easydict  # noqa: E402
from torch import Tensor, nn

from t2igan.models import ResolvedModel, build_model, parse_model_ref, resolve
from t2igan.nn.interfaces import Batch, BuildContext, TextFeatures
from t2igan.nn.layers import pyramid_levels
from t2igan.registry import get_registry
from t2igan.training.trainer import Trainer, TrainerConfig

CONFIGS = {"tiny": ("tiny", 16), "bird": ("bird256", 4)}  # name: (preset, batch)
MODELS = ("dfgan", "ratgan")
NCHW = "ours NCHW"  # the side label of our Trainer with `channels_last=False` (--memory-format both)
RAT_FULL_LEVELS = 7  # model.py NetG: block0 at 4x4, then six x2 upsamplings to 256 px


@dataclass
class Side:
    """One implementation under test: a training step on (images, sentences), generation from (noise,
    sentences), and its networks (for the train/eval mode and the parameter counts)."""

    label: str
    train_step: Callable[[Tensor, Tensor], None]
    generate: Callable[[Tensor, Tensor], Tensor]
    generator: nn.Module
    discriminator: nn.Module
    note: str = ""
    step_seconds: list[float] = field(default_factory=list)
    generate_seconds: list[float] = field(default_factory=list)

    def set_training(self, training: bool) -> None:
        self.generator.train(training)
        self.discriminator.train(training)


def trained_parameters(module: nn.Module) -> int:
    """Parameters that received a gradient: the unused layers the official code keeps are not counted."""
    return sum(p.numel() for p in module.parameters() if p.grad is not None)


def adam(params, lr: float, config: dict) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(config["beta1"], config["beta2"]))


# ------------------------------------------------------------------------------------------- ours
def our_side(resolved: ResolvedModel, registry, channels_last: bool = True, label: str = "ours") -> Side:
    model = build_model(resolved, BuildContext(registry))
    optimizer = resolved.optimizer
    trainer_config = TrainerConfig(
        out_dir=Path("/nonexistent"),
        total_steps=1,
        lr_g=optimizer.lr_g,
        lr_d=optimizer.lr_d,
        betas=optimizer.betas,
        progress=False,
        channels_last=channels_last,
    )
    trainer = Trainer(model, None, trainer_config)

    def train_step(images: Tensor, sentence: Tensor) -> None:
        batch = trainer.prepare(Batch(images, TextFeatures(sentence)))  # as `fit` takes a loader batch
        trainer.d_step(batch)
        trainer.g_step(batch)

    def generate(noise: Tensor, sentence: Tensor) -> Tensor:
        return model.generate(noise, TextFeatures(sentence))

    return Side(label, train_step, generate, model.generator, model.discriminator)


# --------------------------------------------------------------------------------- official code
def magp(out: Tensor, inputs: tuple[Tensor, Tensor]) -> Tensor:
    """DF-GAN lib/modules.py `MA_GP`, RAT-GAN main.py: 2 · mean(||[∇x, ∇s]||^6), without `.cuda()`."""
    grads = torch.autograd.grad(
        outputs=out,
        inputs=inputs,
        grad_outputs=torch.ones(out.size()),
        retain_graph=True,
        create_graph=True,
        only_inputs=True,
    )
    grad = torch.cat([g.view(g.size(0), -1) for g in grads], dim=1)
    return 2.0 * torch.mean(torch.sqrt(torch.sum(grad**2, dim=1)) ** 6)


def official_dfgan(code_dir: Path, config: dict) -> Side:
    (gan,) = import_from_checkout(code_dir, "models.GAN")
    nf, z_dim, cond, size = config["nf"], config["noise_dim"], config["cond_dim"], config["image_size"]
    net_g, net_d, net_c = gan.NetG(nf, z_dim, cond, size, 3), gan.NetD(nf, size, 3), gan.NetC(nf, cond)
    opt_g = adam(net_g.parameters(), config["lr_g"], config)
    opt_d = adam(list(net_d.parameters()) + list(net_c.parameters()), config["lr_d"], config)

    def train_step(images: Tensor, sentence: Tensor) -> None:
        """code/lib/modules.py `train`, one iteration."""
        imgs, sent_emb = images.requires_grad_(), sentence.requires_grad_()
        real_features = net_d(imgs)
        pred_real = net_c(real_features, sent_emb)
        err_real = F.relu(1.0 - pred_real).mean()
        mis_features = torch.cat((real_features[1:], real_features[0:1]), dim=0)
        err_mis = F.relu(1.0 + net_c(mis_features, sent_emb)).mean()
        fake = net_g(torch.randn(len(imgs), z_dim), sent_emb)
        err_fake = F.relu(1.0 + net_c(net_d(fake.detach()), sent_emb)).mean()
        err_d = err_real + (err_fake + err_mis) / 2.0 + magp(pred_real, (imgs, sent_emb))
        opt_d.zero_grad()
        err_d.backward()
        opt_d.step()
        err_g = -net_c(net_d(fake), sent_emb).mean()
        opt_g.zero_grad()
        err_g.backward()
        opt_g.step()

    @torch.no_grad()
    def generate(noise: Tensor, sentence: Tensor) -> Tensor:
        return net_g(noise, sentence)

    return Side("official", train_step, generate, net_g, nn.ModuleList([net_d, net_c]))


class ScaledRATGenerator(nn.Module):
    """The official NetG's modules below 256 px: fc, block0, the last levels-1 blocks, conv_img, wired
    as NetG.forward wires them (x2 nearest upsampling before every block but the first)."""

    def __init__(self, net_g: nn.Module, image_size: int):
        super().__init__()
        self.net = net_g
        levels = pyramid_levels(image_size)
        self.names = ["block0", *(f"block{i}" for i in range(RAT_FULL_LEVELS + 1 - levels, RAT_FULL_LEVELS))]

    def forward(self, noise: Tensor, sentence: Tensor) -> Tensor:
        out = self.net.fc(noise).view(noise.size(0), 8 * self.net.ngf, 4, 4)
        for index, name in enumerate(self.names):
            if index:
                out = F.interpolate(out, scale_factor=2)
            out = getattr(self.net, name)(out, sentence)
        return self.net.conv_img(out)


class ScaledRATDiscriminator(nn.Module):
    """The official NetD's modules below 256 px: conv_img and its first levels-1 resD blocks (to 4x4);
    COND_DNET with its first conv re-made for the channels those blocks reach (16·nf at 256 px)."""

    def __init__(self, net_d: nn.Module, nf: int, image_size: int):
        super().__init__()
        self.net = net_d
        self.count = pyramid_levels(image_size) - 1
        channels = nf * min(2**self.count, 16)
        self.COND_DNET = net_d.COND_DNET
        self.COND_DNET.joint_conv[0] = nn.Conv2d(channels + 256, nf * 2, 3, 1, 1, bias=False)

    def forward(self, images: Tensor) -> Tensor:
        out = self.net.conv_img(images)
        for index in range(self.count):
            out = getattr(self.net, f"block{index}")(out)
        return out


def official_ratgan(code_dir: Path, config: dict) -> Side:
    if (config["noise_dim"], config["cond_dim"]) != (100, 256):
        sys.exit("the official RAT-GAN code hard-codes noise 100 and sentence 256 (CustomLSTM, affine)")
    standin_easydict()
    files = "model_flower" if config["affines_per_block"] == 6 else "model"
    official, damsm = import_from_checkout(code_dir, files, "DAMSM")
    nf, size, z_dim = config["nf"], config["image_size"], config["noise_dim"]
    lstm = damsm.CustomLSTM(256, 256)
    net_g, net_d = official.NetG(nf, z_dim, lstm), official.NetD(nf)
    note = ""
    if size != 256:
        net_g, net_d = ScaledRATGenerator(net_g, size), ScaledRATDiscriminator(net_d, nf, size)
        note = f"official NetG/NetD truncated to {size} px (see the module docstring)"
    opt_g = adam(net_g.parameters(), config["lr_g"], config)
    opt_d = adam(net_d.parameters(), config["lr_d"], config)

    def train_step(imgs: Tensor, sent_emb: Tensor) -> None:
        """code/main.py `train`, one iteration."""
        batch_size = len(imgs)
        real_features = net_d(imgs)
        err_real = F.relu(1.0 - net_d.COND_DNET(real_features, sent_emb)).mean()
        output = net_d.COND_DNET(real_features[: (batch_size - 1)], sent_emb[1:batch_size])
        err_mis = F.relu(1.0 + output).mean()
        noise = torch.randn(batch_size, z_dim)
        lstm.init_hidden(noise)
        fake = net_g(noise, sent_emb)
        err_fake = F.relu(1.0 + net_d.COND_DNET(net_d(fake.detach()), sent_emb)).mean()
        err_d = err_real + (err_fake + err_mis) / 2.0
        opt_d.zero_grad()
        opt_g.zero_grad()
        err_d.backward()
        opt_d.step()
        interpolated, sent_inter = imgs.data.requires_grad_(), sent_emb.data.requires_grad_()
        d_loss = magp(net_d.COND_DNET(net_d(interpolated), sent_inter), (interpolated, sent_inter))
        opt_d.zero_grad()
        opt_g.zero_grad()
        d_loss.backward()
        opt_d.step()
        err_g = -net_d.COND_DNET(net_d(fake), sent_emb).mean()
        opt_g.zero_grad()
        opt_d.zero_grad()
        err_g.backward()
        opt_g.step()

    @torch.no_grad()
    def generate(noise: Tensor, sentence: Tensor) -> Tensor:
        lstm.init_hidden(noise)
        return net_g(noise, sentence)

    return Side("official", train_step, generate, net_g, net_d, note)


# -------------------------------------------------------------------------------------- measuring
def timed(call: Callable[..., object], *inputs: Tensor) -> float:
    tick = time.perf_counter()
    call(*inputs)
    return time.perf_counter() - tick


def measure(sides: list[Side], config: dict, batch: int, repeats: int, warmup: int) -> None:
    size, cond, z_dim = config["image_size"], config["cond_dim"], config["noise_dim"]
    for round_index in range(warmup + repeats):
        images = torch.rand(batch, 3, size, size) * 2 - 1
        sentence, noise = torch.randn(batch, cond), torch.randn(batch, z_dim)
        order = sides if round_index % 2 == 0 else sides[::-1]
        for side in order:
            side.set_training(True)
            inputs = (images.clone(), sentence.clone())  # a side may set requires_grad on its copies
            step = timed(side.train_step, *inputs)
            side.set_training(False)
            generation = timed(side.generate, noise, sentence)
            if round_index >= warmup:
                side.step_seconds.append(step)
                side.generate_seconds.append(generation)
        if round_index == 0:
            for side in sides:
                g, d = trained_parameters(side.generator), trained_parameters(side.discriminator)
                print(f"  trained parameters {side.label:>9}: G {g:,}  D {d:,}", flush=True)


@dataclass
class Row:
    model: str
    config: str
    batch: int
    step_ms: dict[str, float]
    images_per_second: dict[str, float]

    def step_ratio(self) -> float | None:
        if "official" not in self.step_ms:
            return None
        return self.step_ms["ours"] / self.step_ms["official"]

    def generate_ratio(self) -> float | None:  # time ratio ours / official, as for the steps
        if "official" not in self.images_per_second:
            return None
        return self.images_per_second["official"] / self.images_per_second["ours"]


def run_one(model_name: str, config_name: str, args, officials: dict[str, Path | None]) -> Row:
    preset, batch = CONFIGS[config_name]
    registry = get_registry()
    overrides = f":{args.set}" if args.set else ""
    resolved = resolve(parse_model_ref(f"{model_name}.{preset}{overrides}"), registry)
    config = resolved.settings  # the official sides read the optimiser keys too
    torch.manual_seed(args.seed)
    sides = [our_side(resolved, registry, channels_last=args.memory_format != "contiguous")]
    if args.memory_format == "both":  # the same weights (same seed), the Trainer's NCHW path
        torch.manual_seed(args.seed)
        sides.append(our_side(resolved, registry, channels_last=False, label=NCHW))
    code_dir = officials[model_name]
    if code_dir is not None:
        build_official = official_dfgan if model_name == "dfgan" else official_ratgan
        sides.append(build_official(code_dir, config))
    print(
        f"{model_name} {config_name} ({model_name}.{preset}{overrides}: {config['image_size']} px, "
        f"nf {config['nf']}, batch {batch}), {args.threads} threads, {args.repeats} repeats",
        flush=True,
    )
    for side in sides[1:]:
        if side.note:
            print(f"  note: {side.note}")
    measure(sides, config, batch, args.repeats, args.warmup)
    row = Row(
        model_name,
        config_name,
        batch,
        {side.label: 1000 * statistics.median(side.step_seconds) for side in sides},
        {side.label: batch / statistics.median(side.generate_seconds) for side in sides},
    )
    for side in sides:
        print(
            f"  {side.label:>9}: step {row.step_ms[side.label]:.1f} ms median "
            f"(min {1000 * min(side.step_seconds):.1f}), generation "
            f"{row.images_per_second[side.label]:.1f} images/s median "
            f"(max {batch / min(side.generate_seconds):.1f})",
            flush=True,
        )
    if NCHW in row.step_ms:
        print(
            f"  ratio ours/{NCHW}: step time {row.step_ms['ours'] / row.step_ms[NCHW]:.3f}, generation time "
            f"{row.images_per_second[NCHW] / row.images_per_second['ours']:.3f}"
        )
    if row.step_ratio() is not None:
        print(
            f"  ratio ours/official: step time {row.step_ratio():.3f}, generation time {row.generate_ratio():.3f}"
        )
    return row


def report(rows: list[Row]) -> int:
    """The summary table; returns the exit status (1 when a step-time ratio is above 1.0)."""

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    header = (
        "model",
        "config",
        "batch",
        "ours ms",
        "official ms",
        "ratio",
        "ours img/s",
        "official img/s",
        "gen ratio",
    )
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.model,
                row.config,
                str(row.batch),
                number(row.step_ms["ours"], 1),
                number(row.step_ms.get("official"), 1),
                number(row.step_ratio(), 3),
                number(row.images_per_second["ours"], 1),
                number(row.images_per_second.get("official"), 1),
                number(row.generate_ratio(), 3),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print("\nmedians; ratio = our time / official time (step: D step with MA-GP + G step)")
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
    slower = [row for row in rows if (row.step_ratio() or 0.0) > 1.0]
    for row in slower:
        print(
            f"FLAG: {row.model} {row.config}: our training step is slower (ratio {row.step_ratio():.3f} > 1.0)"
        )
    for row in rows:
        if (row.generate_ratio() or 0.0) > 1.0:
            print(
                f"note: {row.model} {row.config}: our generation is slower (ratio {row.generate_ratio():.3f})"
            )
    return 1 if slower else 0


def choices(text: str, allowed, option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        sys.exit(f"{option} {text!r}: expected a comma-separated subset of {', '.join(allowed)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--official", type=Path, help="tobran/DF-GAN checkout's code/ folder")
    parser.add_argument("--ratgan-official", type=Path, help="RAT-GAN checkout's code/ folder")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: dfgan, ratgan")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: tiny, bird")
    parser.add_argument("--set", default="", help="overrides for every preset, e.g. nf=8 (both sides)")
    parser.add_argument("--repeats", type=int, default=5, help="recorded rounds per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--memory-format",
        choices=("channels_last", "contiguous", "both"),
        default="channels_last",
        help="our Trainer's memory format (its default: channels_last); both: measure ours both ways, "
        "side by side",
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        sys.exit("--repeats must be at least 1 and --warmup at least 0")
    torch.set_num_threads(args.threads)
    officials = {"dfgan": args.official, "ratgan": args.ratgan_official}
    rows = [
        run_one(model_name, config_name, args, officials)
        for config_name in choices(args.configs, CONFIGS, "--configs")
        for model_name in choices(args.models, MODELS, "--models")
    ]
    sys.exit(report(rows))


if __name__ == "__main__":
    main()
