"""One training run, put together once: split, text encoder, model, batches, sample grid and Trainer.
`t2igan train`, the benchmark runner and the Python API all build their runs here; and a model comes
back from one of our checkpoints, with the text encoder it was trained with, through `load_trained`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from t2igan.errors import ConfigError, T2IGanError
from t2igan.models import ModelRef, ResolvedModel, build_model, parse_model_ref, resolve, resolve_for_dataset
from t2igan.nn.interfaces import BuildContext, GANModel, TextFeatures
from t2igan.training import distributed
from t2igan.training.checkpoint import check_text_encoder, read_checkpoint
from t2igan.training.session import (
    DatasetSession,
    SplitBatchSource,
    TextEncoderPool,
    TextHandle,
    batch_source,
    fixed_captions,
    grid_inputs,
    image_size,
    make_trainer,
    model_info,
    seed_everything,
)
from t2igan.training.trainer import Trainer

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

GRID_CAPTIONS = 8  # the sample grid: 8 fixed test captions (rows) ...
GRID_NOISE = 8  # ... x 8 fixed noise vectors (columns), identical for every model and seed of a plan
GRID_SEED = 100  # the grid's noise seed (a plan's `eval_seed`)


def check_budget(steps: int | None, epochs: int | None) -> None:
    """A budget of `steps` or `epochs` (or neither): each a positive integer, never both."""
    if steps is not None and epochs is not None:
        raise ConfigError("give --steps or --epochs, not both")
    for flag, value in (("--steps", steps), ("--epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{flag} {value!r}: expected a positive integer")


def total_steps(
    resolved: ResolvedModel,
    steps_per_epoch: int,
    steps: int | None = None,
    epochs: int | None = None,
    fallback: int | None = None,
) -> int:
    """`steps`, else `epochs` (or the preset's max_epoch) epochs; a preset without max_epoch trains
    `fallback` steps, or is an error when there is none (a paper budget needs the paper's epochs)."""
    check_budget(steps, epochs)
    if steps is not None:
        return int(steps)
    chosen = epochs if epochs is not None else resolved.optimizer.epochs
    if chosen:
        return int(chosen) * steps_per_epoch
    if fallback is None:
        raise T2IGanError(
            f"{resolved.ref.label}: preset {resolved.preset.name!r} has no max_epoch for --budget paper; "
            "give --steps or --epochs"
        )
    return fallback


@dataclass
class PreparedRun:
    """Everything one run trains and is evaluated with. `trainer()` is called by every process of a
    torchrun job together: building the Trainer broadcasts rank 0's weights."""

    resolved: ResolvedModel
    data: DatasetSession
    text: TextHandle
    model: GANModel
    source: SplitBatchSource
    size: int
    steps: int
    batch_size: int
    grid_text: TextFeatures
    grid_noise: Tensor
    new_trainer: Callable[..., Trainer]

    def trainer(self, on_step: Callable[[int], None] | None = None) -> Trainer:
        return self.new_trainer(on_step=on_step)


def prepare_run(
    registry: Registry,
    data: DatasetSession,
    model: ModelRef | str,
    pool: TextEncoderPool,
    device: torch.device,
    out_dir: str | Path,
    seed: int = 0,
    *,
    preset: str | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    default_steps: int | None = None,
    batch_size: int | None = None,
    grid_seed: int = GRID_SEED,
    progress: bool = True,
    label: str | None = None,
    checkpoint_every: int | None = None,
    keep_last: int | None = None,
    on_resolved: Callable[[ResolvedModel, TextHandle], None] | None = None,
) -> PreparedRun:
    """Resolve the model for `data`, load its text encoder, seed, build the model, its batch source and
    the sample-grid inputs. `on_resolved` is told the model and encoder before anything heavy is built
    (the runner writes its "running" record then). Under torchrun rank 0 builds the caches first."""
    ref = parse_model_ref(model) if isinstance(model, str) else model
    with distributed.main_process_first():
        resolved = resolve_for_dataset(ref, registry, data.name, preset)
        text = pool.get(resolved.preset.text_encoder, data)
        if on_resolved is not None:
            on_resolved(resolved, text)
        seed_everything(seed)
        size = image_size(resolved)
        built = build_model(resolved, BuildContext(registry, text.encoder, device))
        batch = batch_size if batch_size is not None else resolved.preset.batch_size
        source = batch_source(data, text, size, batch, seed, built.uses_words)
    count = total_steps(resolved, source.steps_per_epoch, steps, epochs, default_steps)
    grid_text, grid_noise = grid_inputs(
        text,
        fixed_captions(data.test, GRID_CAPTIONS),
        GRID_NOISE,
        built.generator.noise_dim,
        grid_seed,
        device,
    )
    new_trainer = functools.partial(
        make_trainer,
        built,
        source,
        resolved,
        Path(out_dir),
        count,
        seed,
        device,
        grid_text,
        grid_noise,
        progress=progress,
        model_info=model_info(resolved, data, text),
        checkpoint_every=checkpoint_every,
        keep_last=keep_last,
        label=label or f"{resolved.label} on {data.label}",
    )
    return PreparedRun(
        resolved, data, text, built, source, size, count, batch, grid_text, grid_noise, new_trainer
    )


# ------------------------------------------------------------------------------------- checkpoints


def load_trained(
    path: str | Path,
    registry: Registry,
    device: torch.device,
    data_ref: str | None = None,
    root: str | None = None,
    encoder_options: Mapping[str, Any] | None = None,
    expect_model: str | None = None,
    pool: TextEncoderPool | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> tuple[GANModel, ResolvedModel, DatasetSession, TextHandle]:
    """A model rebuilt from one of our checkpoints (or its already-read `checkpoint` content, named by
    `path`), with the text encoder it was trained with. `expect_model` ("dfgan" or "dfgan.bird256") must
    name the model (and preset) the checkpoint holds. Pass the process's `pool` when the metrics will
    need encoders too: each is then loaded once (the frozen CLIP a GALIP/RATLIP model holds is the one
    the CLIP score uses)."""
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(path)
    info = checkpoint["model"]
    missing = [k for k in ("name", "variant", "config", "text_encoder") if k not in info]
    if missing:
        raise T2IGanError(f"checkpoint {path}: its model entry lacks {', '.join(missing)}")
    if expect_model is not None:
        expected = parse_model_ref(expect_model)
        held = f"{info['name']}.{info.get('preset')}"
        if expected.name != info["name"] or expected.preset not in (None, info.get("preset")):
            raise ConfigError(f"--model {expect_model}: checkpoint {path} holds {held} ({info['variant']})")
    resolved = resolve(parse_model_ref(info["variant"]), registry, preset=info.get("preset"))
    resolved = resolved.with_settings(info["config"])
    label = data_ref or info.get("dataset")
    if not label:
        raise ConfigError(f"checkpoint {path} does not say which dataset it was trained on; pass --data")
    data = DatasetSession.open(registry, label, root)
    pool = pool or TextEncoderPool(registry, device, options=encoder_options)
    text = pool.get(info["text_encoder"]["name"], data, info["text_encoder"])
    check_text_encoder(
        info["text_encoder"],
        text.info,
        f"checkpoint {path}",
        "point to the original weights (plan `encoders` / $T2IGAN_WEIGHTS) so that its text features mean "
        "what they meant in training",
    )
    model = build_model(resolved, BuildContext(registry, text.encoder, device))
    model.load_checkpoint_states(checkpoint["states"], f"checkpoint {path}")
    if info.get("official_clip_copy"):  # converted from an official netG: is our CLIP the one it had?
        model.verify_official_clip_copy(info["official_clip_copy"], f"checkpoint {path}")
    return model.to(device).eval(), resolved, data, text
