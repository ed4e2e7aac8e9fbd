"""The Python API: the zoo from a notebook, as timm and open_clip users expect it. Every `t2igan`
command is a thin layer over these functions; they take plain values, never parsed flags.

    import t2igan
    t2igan.list_models("rat*")
    model = t2igan.create_model("dfgan.tiny", checkpoint="runs/train/shapes/dfgan/seed0/train/final.pt")
    images = model.generate(["a small red circle"], n=4, seed=0)   # PIL images
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from t2igan.errors import ConfigError
from t2igan.models import ModelRef, ResolvedModel, build_model, parse_model_ref, resolve_for_dataset
from t2igan.nn.interfaces import BuildContext, GANModel
from t2igan.paths import check_output_file, check_output_folder
from t2igan.training.session import DatasetSession, TextEncoderPool, TextHandle, grid_inputs, resolve_device

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

PathLike = str | os.PathLike
logger = logging.getLogger(__name__)


def _registry() -> Registry:
    from t2igan.registry import get_registry

    return get_registry()


def _device(device: str | torch.device | None) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


# ------------------------------------------------------------------------------------------ models


def list_models(pattern: str | None = None) -> list[str]:
    """`model.preset` names, sorted; `pattern` is a wildcard over a model's name or `model.preset`
    (`"rat*"`, `"*.tiny"`, `"galip.cub*"`)."""
    from t2igan.registry import matching

    registry = _registry()
    names = []
    for name in sorted(registry.models):
        for preset in registry.model(name).presets:
            full = f"{name}.{preset}"
            if not pattern or matching([name], pattern) or matching([full], pattern):
                names.append(full)
    return names


@dataclass
class T2IModel:
    """A generator ready to sample: the GAN, the text encoder its captions go through, and where it
    came from. `model.model` is the `GANModel` (a torch module) for anything beyond `generate`."""

    model: GANModel
    resolved: ResolvedModel
    data: DatasetSession
    text: TextHandle
    device: torch.device

    @property
    def name(self) -> str:
        return f"{self.resolved.spec.name}.{self.resolved.preset.name}"

    def generate(
        self, captions: str | Sequence[str], n: int = 1, seed: int = 0, as_tensor: bool = False
    ) -> Any:
        """`n` images per caption, caption-major; the same seed gives the same images. PIL images, or with
        `as_tensor` one (len(captions)·n, 3, H, W) tensor in [-1, 1] on the CPU."""
        from t2igan.training.trainer import seeded_rng

        captions = [captions] if isinstance(captions, str) else list(captions)
        if n <= 0:
            raise ConfigError(f"n={n}: expected a positive number of images per caption (--n)")
        if not captions:
            raise ConfigError("no captions given: expected at least one (--text)")
        for number, caption in enumerate(captions, 1):
            if not isinstance(caption, str) or not caption.strip():
                raise ConfigError(
                    f"caption {number} (--text) is empty: expected a sentence, e.g. 'a red circle'"
                )
            unknown = self.text.encoder.unknown_words(caption)
            if unknown:
                logger.warning(
                    "caption %d %r: %s not in the %s vocabulary and dropped: %s",
                    number,
                    caption,
                    "this word is" if len(unknown) == 1 else f"these {len(unknown)} words are",
                    self.text.name,
                    ", ".join(unknown),
                )
        features, noise = grid_inputs(
            self.text, captions, n, self.model.generator.noise_dim, seed, self.device
        )
        eval_noise = self.model.eval_noise
        if eval_noise is not None:  # the paper's sampling noise (DF-GAN truncates), seeded
            noise = (
                eval_noise(n, torch.Generator().manual_seed(seed)).repeat(len(captions), 1).to(self.device)
            )
        with torch.no_grad(), seeded_rng(seed, self.device):  # in-forward randomness (ALR-GAN's CA) too
            images = self.model.generate(noise, features).float().cpu()
        if as_tensor:
            return images
        from PIL import Image

        from t2igan.metrics.images import to_uint8_nhwc

        return [Image.fromarray(array) for array in to_uint8_nhwc(images)]


def create_model(
    ref: str | ModelRef,
    checkpoint: PathLike | Sequence[PathLike] | None = None,
    *,
    data: str | None = None,
    root: PathLike | None = None,
    device: str | torch.device | None = None,
    encoders: Mapping[str, Mapping[str, Any]] | None = None,
    pool: TextEncoderPool | None = None,
) -> T2IModel:
    """A model by reference (`"galip"`, `"dfgan.bird256"`, `"dfgan:fusion=rat"`), in eval mode.

    `checkpoint` is one of ours (a path; the model and dataset it holds win over `ref`'s preset), or a
    list of an official release's files (converted in memory, as `t2igan convert` does), or None for
    fresh weights. `data` (default: the checkpoint's, else the preset's dataset, else `shapes`) says
    whose text encoder to load; `encoders` are a plan's `[encoders]` settings."""
    from t2igan.training.run import load_trained

    registry = _registry()
    where = _device(device)
    ref = parse_model_ref(ref) if isinstance(ref, str) else ref
    root = None if root is None else str(root)
    if isinstance(checkpoint, (str, os.PathLike)):
        model, resolved, session, text = load_trained(
            checkpoint, registry, where, data, root, encoders, expect_model=ref.label, pool=pool
        )
        return T2IModel(model, resolved, session, text, where)
    if checkpoint is not None:
        from t2igan.training.convert import convert_official

        files = [Path(path) for path in checkpoint]
        converted = convert_official(files, ref, registry)
        model, resolved, session, text = load_trained(
            ", ".join(map(str, files)), registry, where, data, root, encoders, pool=pool, checkpoint=converted
        )
        return T2IModel(model, resolved, session, text, where)
    spec = registry.model(ref.name)
    label = data or spec.preset(ref.preset).dataset or "shapes"
    session = DatasetSession.open(registry, label, root)
    resolved = resolve_for_dataset(ref, registry, session.name)
    pool = pool or TextEncoderPool(registry, where, options=encoders)
    text = pool.get(resolved.preset.text_encoder, session)
    model = build_model(resolved, BuildContext(registry, text.encoder, where))
    return T2IModel(model.to(where).eval(), resolved, session, text, where)


def convert(files: Sequence[PathLike], model: str, out: PathLike) -> tuple[Path, dict[str, Any]]:
    """An official release (`files`: RAT-GAN's netG and netD are two) into one of our checkpoints at
    `out`, for `model` (e.g. "dfgan.bird256"); returns the path and the checkpoint's model entry."""
    from t2igan.training.checkpoint import save_checkpoint
    from t2igan.training.convert import convert_official

    check_output_file(out)  # before the release files are read
    checkpoint = convert_official(list(files), model, _registry())
    return save_checkpoint(checkpoint, out), checkpoint["model"]


# -------------------------------------------------------------------------------------------- data


def load_split(name: str, root: PathLike | None = None, split: str = "test") -> Any:
    """A dataset's split (`"shapes"`, `"shapes:size=tiny"`, `"cub"` with its `root`): image records,
    captions and the sha256 that identifies it."""
    from t2igan.data.commands import load_split as load
    from t2igan.training.session import parse_dataset_ref

    dataset, options = parse_dataset_ref(name)
    return load(dataset, split, None if root is None else str(root), **options)


# ------------------------------------------------------------------------------------------- train


def train(
    model: str | ModelRef,
    data: str = "shapes",
    *,
    preset: str | None = None,
    root: PathLike | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    out: PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    encoders: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint_every: int | None = None,
    keep_last: int | None = None,
    progress: bool = True,
) -> Any:
    """Train one model on one dataset into `out` (default runs/train/DATA/MODEL/seedK); without `steps`
    or `epochs`, the preset's max_epoch epochs, else the smoke budget. A folder holding an earlier run's
    checkpoints is resumed with `resume=True` and refused without it. Returns the Trainer's result."""
    from t2igan.benchmarking.budgets import BUDGET_STEPS
    from t2igan.registry import get_registry
    from t2igan.training import distributed
    from t2igan.training.run import check_budget, prepare_run

    check_budget(steps, epochs)
    registry = get_registry()
    # under torchrun: join the process group (gloo on CPU, nccl on CUDA, this rank's GPU)
    where = distributed.init_from_environment(str(_device(device)))
    session = DatasetSession.open(registry, data, None if root is None else str(root), progress)
    ref = parse_model_ref(model) if isinstance(model, str) else model
    resolved = resolve_for_dataset(ref, registry, session.name, preset)
    folder = Path(out) if out else Path("runs") / "train" / session.label / resolved.label / f"seed{seed}"
    check_output_folder(folder)  # before any encoder or model is built
    _check_resume(folder, resume)
    pool = TextEncoderPool(registry, where, progress, options=encoders)
    if steps is None and epochs is None and not resolved.optimizer.epochs:
        logger.info(
            "preset %r has no max_epoch and no --steps was given: training %d steps",
            resolved.preset.name,
            BUDGET_STEPS["smoke"],
        )
    run = prepare_run(
        registry,
        session,
        ref,
        pool,
        where,
        folder / "train",
        seed,
        preset=preset,
        steps=steps,
        epochs=epochs,
        default_steps=BUDGET_STEPS["smoke"],
        progress=progress,
        checkpoint_every=checkpoint_every,
        keep_last=keep_last,
    )
    return run.trainer().fit()


def _check_resume(out: Path, resume: bool) -> None:
    from t2igan.training.checkpoint import step_checkpoints

    held = step_checkpoints(out / "train") if (out / "train").is_dir() else []
    earlier_run = bool(held) or (out / "train" / "final.pt").exists()
    if earlier_run and not resume:
        raise ConfigError(
            f"{out}: holds checkpoints of an earlier run; pass --resume to continue it, or another --out"
        )
    if resume and not earlier_run:
        inside = out.name == "train" and ((out / "final.pt").exists() or bool(step_checkpoints(out)))
        hint = f"; {out} is a run's train/ folder: pass its parent, --out {out.parent}" if inside else ""
        raise ConfigError(
            f"--resume: {out / 'train'} holds no checkpoint (step*.pt or final.pt) to resume{hint}"
        )


# ---------------------------------------------------------------------------------------- evaluate


@dataclass
class Evaluation:
    """What `evaluate` scored: the values (dicts with name, value, std, provenance), on which split."""

    source: str
    dataset: str
    split: dict[str, Any]
    protocol: str
    values: list[dict[str, Any]]
    record: Path | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "split": self.split,
            "protocol": self.protocol,
            "values": self.values,
        }


def evaluate(
    source: PathLike,
    *,
    data: str | None = None,
    root: PathLike | None = None,
    protocol: str = "quick",
    metrics: Sequence[str] | None = None,
    fid_mode: str = "standard",
    inception_weights: PathLike | None = None,
    fid_reference: Any = None,
    second_clip: str | None = None,
    eval_images: int | None = None,
    device: str | torch.device | None = None,
    encoders: Mapping[str, Mapping[str, Any]] | None = None,
    probe: Mapping[str, Any] | None = None,
    record: PathLike | None = None,
) -> Evaluation:
    """Score a checkpoint (.pt) or a folder of images against a dataset's test split by `protocol`.
    `fid_reference` is official statistics (`{"cub": "bird_val256_FIDK0.npz"}` or "cub=NPZ" items; paper
    FID only); `eval_images` scores the first N images (values labelled quick); `record` (a checkpoint)
    also writes a run record into that folder, which `t2igan report` tabulates beside the paper's."""
    from t2igan.benchmarking.evaluation import EvalEncoders
    from t2igan.benchmarking.plan import fid_references

    registry = _registry()
    where = _device(device)
    path = Path(source)
    root = None if root is None else str(root)
    references = fid_references(fid_reference or None, fid_mode)
    weights = None if inception_weights is None else str(inception_weights)
    pool = TextEncoderPool(registry, where, options=encoders)  # one per process: each encoder once
    scorers = EvalEncoders(pool, dict(probe or {}))
    if record is not None and path.is_dir():
        raise ConfigError(f"--record: {path} is a folder of images; a run record is written for a checkpoint")
    if path.is_dir():
        session = DatasetSession.open(registry, data or "shapes", root)
        chosen_protocol = capped(session.protocol(protocol), eval_images)
        notes, values = _evaluate_folder(
            path,
            session,
            chosen_protocol,
            metrics,
            fid_mode,
            weights,
            references,
            second_clip,
            scorers,
            registry,
            where,
        )
        written = None
    elif path.is_file():
        from t2igan.benchmarking.evaluation import evaluate_model
        from t2igan.benchmarking.records import run_dir, write_record
        from t2igan.training.run import load_trained
        from t2igan.training.session import image_size

        model, resolved, session, text = load_trained(path, registry, where, data, root, encoders, pool=pool)
        chosen_protocol = capped(session.protocol(protocol), eval_images)
        started = time.time()
        records, _ = evaluate_model(
            model,
            text,
            session,
            chosen_protocol,
            scorers,
            registry,
            where,
            image_size(resolved),
            fid_mode=fid_mode,
            metrics=list(metrics) if metrics else None,
            inception_weights=weights,
            fid_reference=references.get(session.name),
            second_clip=second_clip,
        )
        notes, values, written = [], [r.__dict__ for r in records], None
        if record is not None:
            entry = eval_record(path, resolved, session, text, chosen_protocol, records, where, started)
            written = write_record(run_dir(record, session.label, resolved.label, 0), entry)
    else:
        raise ConfigError(f"{path}: no such checkpoint file or image folder")
    split = {"name": session.test.name, "sha256": session.test.sha256, "count": len(session.test)}
    return Evaluation(str(path), session.name, split, chosen_protocol.name, values, written, notes)


def capped(protocol: Any, eval_images: int | None) -> Any:
    """The protocol scoring only its first `eval_images` images (every value then says quick)."""
    if eval_images is None:
        return protocol
    if eval_images <= 0:
        raise ConfigError(f"--eval-images {eval_images}: expected a positive integer")
    return dataclasses.replace(protocol, max_images=eval_images)


def _evaluate_folder(
    folder: Path,
    session: DatasetSession,
    protocol: Any,
    metrics: Sequence[str] | None,
    fid_mode: str,
    weights: str | None,
    references: Mapping[str, str],
    second_clip: str | None,
    scorers: Any,
    registry: Registry,
    device: torch.device,
) -> tuple[list[str], list[dict[str, Any]]]:
    from PIL import Image

    from t2igan.benchmarking.evaluation import eval_context, inception_configs
    from t2igan.metrics.evaluate import caption_free, evaluate_folder, has_samples, plain_images, read_samples

    notes: list[str] = []
    chosen = list(metrics) if metrics else list(protocol.metrics)
    if not metrics and not has_samples(folder):
        chosen, dropped = caption_free(chosen, registry)
        if dropped:
            notes.append(
                f"{folder}: no samples.json, so no image has a known caption: skipping "
                f"{', '.join(dropped)}; scoring {', '.join(chosen) or 'nothing'}"
            )
        if not chosen:
            raise ConfigError(
                f"protocol {protocol.name!r} of {session.name} has no metric that scores images alone; "
                "give --metrics (e.g. fid,kid) or a folder written by t2igan with its samples.json"
            )
    configs = inception_configs(fid_mode, weights, references.get(session.name))
    if second_clip:
        from t2igan.metrics.clip_score import parse_second_clip

        if not has_samples(folder):
            raise ConfigError(
                f"--second-clip: {folder} has no samples.json, so no image has a known caption to score"
            )
        configs["clip_score_2"] = parse_second_clip(second_clip)
        chosen += [] if "clip_score_2" in chosen else ["clip_score_2"]
    first = folder / read_samples(folder)[0]["file"] if has_samples(folder) else plain_images(folder)[0]
    with Image.open(first) as image:
        resolution = int(image.size[0])
    # with the plan's [encoders] / [probe] settings, as for a checkpoint
    context = eval_context(session, resolution, chosen, scorers, registry, device, protocol.batch_size)
    result = evaluate_folder(folder, session.test.records, protocol, context, chosen, configs, registry)
    return notes, [v.as_dict() for v in result.values]


def eval_record(
    source: Path,
    resolved: ResolvedModel,
    data: DatasetSession,
    text: TextHandle,
    protocol: Any,
    metrics: list[Any],
    device: torch.device,
    started: float,
) -> Any:
    """A finished run record for a scored checkpoint (ours, or converted from an official release), laid
    out as a bench's, so that the report tabulates it with the model's reported numbers beside it."""
    from t2igan.benchmarking.records import STATUS_FINISHED, RunRecord, environment, protocol_entry
    from t2igan.training.checkpoint import read_checkpoint
    from t2igan.training.session import image_size
    from t2igan.weights import sha256_file

    checkpoint = read_checkpoint(source)
    progress = checkpoint.get("progress") or {}
    return RunRecord(
        plan="eval",
        dataset=data.label,
        model=resolved.label,
        seed=0,
        status=STATUS_FINISHED,
        model_name=resolved.spec.name,
        preset=resolved.preset.name,
        config=resolved.settings,
        split=data.split_info(),
        protocol={**protocol_entry(protocol), "resolution": image_size(resolved)},
        budget={"name": "checkpoint", "steps": progress.get("step")},
        text_encoder=text.info,
        environment=environment(device),
        metrics=list(metrics),
        paper_results=[vars(r) for r in resolved.spec.paper_results],
        optimises=list(resolved.spec.optimises),
        checkpoint={
            "file": str(source),
            "sha256": sha256_file(source),
            "converted_from": checkpoint["model"].get("converted_from") or [],
        },
        started=started,
        finished=time.time(),
    )


# ------------------------------------------------------------------------------------------- bench


def bench(plan: Any = None, *, roots: Mapping[str, PathLike] | None = None, **fields: Any) -> Any:
    """Run a benchmark plan and return its table (a pandas DataFrame: one row per model and dataset,
    mean ± std over seeds, the paper's numbers beside ours). `plan` is a TOML file, a `BenchPlan`, or
    None for the plan `fields` give (`models="dfgan,galip"`, `data="shapes"`, `steps=300`, …; the same
    fields as a plan file). Finished runs in the output folder are reused; interrupted ones resume."""
    from t2igan.benchmarking.plan import BenchPlan, load_plan_file, make_plan
    from t2igan.benchmarking.runner import run_plan

    given = dict(fields)
    if roots:
        given["roots"] = {name: str(path) for name, path in roots.items()}
    if isinstance(plan, BenchPlan):
        if given:
            raise ConfigError("bench(plan=BenchPlan): give the fields in the plan, not beside it")
        chosen = plan
    elif plan is not None:
        chosen = load_plan_file(plan, given)
    else:
        chosen = make_plan(given, source="bench()")
    _, report = run_plan(chosen, _registry())
    return None if report is None else report.table
