"""`t2igan train`, `eval`, `sample` and `convert`: one model at a time, through the same session,
Trainer and evaluation code the benchmark runner uses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from t2igan.atomic import torch_save_atomic, write_json_atomic
from t2igan.bench.records import (
    STATUS_FINISHED,
    RunRecord,
    environment,
    protocol_entry,
    run_dir,
    write_record,
)
from t2igan.errors import ConfigError, T2IGanError
from t2igan.models import ModelRef, ResolvedModel, build_model, parse_model_ref, resolve
from t2igan.nn.interfaces import BuildContext, GANModel
from t2igan.train import distributed
from t2igan.train.checkpoint import check_text_encoder, make_checkpoint, read_checkpoint, step_checkpoints
from t2igan.train.session import (
    DatasetSession,
    TextEncoderPool,
    TextHandle,
    batch_source,
    fixed_captions,
    grid_inputs,
    image_size,
    make_trainer,
    model_info,
    resolve_device,
    seed_everything,
)
from t2igan.weights import load_state_dict_file, sha256_file

DEFAULT_STEPS = 300  # `t2igan train` without --steps/--epochs on a preset without max_epoch: the smoke budget


def _registry() -> Any:
    from t2igan.registry import get_registry

    return get_registry()


def _plan_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """([encoders], [probe]) of `--plan FILE`, or empty: the defaults."""
    if not getattr(args, "plan", None):
        return {}, {}
    from t2igan.bench.plan import load_plan_file

    plan = load_plan_file(args.plan)
    return plan.encoders, plan.probe


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- train


def _resolve_for(ref_text: str, preset: str | None, data: DatasetSession, registry: Any) -> ResolvedModel:
    from t2igan.bench.runner import choose_preset

    ref = parse_model_ref(ref_text)
    spec = registry.model(ref.name)
    if preset and ref.preset and preset != ref.preset:
        raise ConfigError(f"--model {ref_text!r} names preset {ref.preset!r} but --preset says {preset!r}")
    return resolve(ref, registry, preset=choose_preset(spec, data.name, ref.preset or preset))


def _steps(args: argparse.Namespace, resolved: ResolvedModel, steps_per_epoch: int) -> int:
    if args.steps is not None and args.epochs is not None:
        raise ConfigError("give --steps or --epochs, not both")
    if args.steps is not None:
        return int(args.steps)
    epochs = args.epochs if args.epochs is not None else resolved.config.get("max_epoch")
    if epochs:
        return int(epochs) * steps_per_epoch
    _say(
        f"preset {resolved.preset.name!r} has no max_epoch and no --steps was given: training {DEFAULT_STEPS} steps"
    )
    return DEFAULT_STEPS


def run_train(args: argparse.Namespace) -> int:
    registry = _registry()
    # under torchrun: join the process group (gloo on CPU, nccl on CUDA, this rank's GPU)
    device = distributed.init_from_environment(str(resolve_device(args.device)))
    data = DatasetSession.open(registry, args.data, args.root)
    resolved = _resolve_for(args.model, args.preset, data, registry)
    out = Path(args.out or Path("runs") / "train" / data.label / resolved.label / f"seed{args.seed}")
    held = step_checkpoints(out / "train") if (out / "train").is_dir() else []
    earlier_run = bool(held) or (out / "train" / "final.pt").exists()
    if earlier_run and not args.resume:
        raise ConfigError(
            f"{out}: holds checkpoints of an earlier run; pass --resume to continue it, or another --out"
        )
    if args.resume and not earlier_run:
        inside = out.name == "train" and ((out / "final.pt").exists() or bool(step_checkpoints(out)))
        hint = f"; {out} is a run's train/ folder: pass its parent, --out {out.parent}" if inside else ""
        raise ConfigError(
            f"--resume: {out / 'train'} holds no checkpoint (step*.pt or final.pt) to resume{hint}"
        )
    with distributed.main_process_first():  # rank 0 builds the caches, the others then read them
        pool = TextEncoderPool(registry, device, options=_plan_settings(args)[0])
        text = pool.get(resolved.preset.text_encoder, data)
        seed_everything(args.seed)
        model = build_model(resolved, BuildContext(registry, text.encoder, device))
        size = image_size(resolved)
        source = batch_source(
            data, text, size, resolved.preset.batch_size, args.seed, bool(getattr(model, "uses_words", False))
        )
    steps = _steps(args, resolved, source.steps_per_epoch)
    grid_text, grid_noise = grid_inputs(
        text, fixed_captions(data.test, 8), 8, model.generator.noise_dim, 100, device
    )
    trainer = make_trainer(
        model,
        source,
        resolved,
        out / "train",
        steps,
        args.seed,
        device,
        grid_text,
        grid_noise,
        model_info=model_info(resolved, data, text),
        label=f"{resolved.label} on {data.label}",
        checkpoint_every=args.checkpoint_every,
        keep_last=args.keep_last,
    )
    result = trainer.fit()
    if distributed.is_main_process():
        print(
            f"trained {result.steps} steps in {result.train_seconds:.0f} s on {distributed.world_size()} "
            f"process(es); checkpoint {result.final_checkpoint}"
        )
        print(f"samples: {out / 'train' / 'samples' / 'final.png'}")
    return 0


# ------------------------------------------------------------------------------------- checkpoints


def load_trained(
    path: str | Path,
    registry: Any,
    device: torch.device,
    data_ref: str | None = None,
    root: str | None = None,
    encoder_options: dict[str, Any] | None = None,
    expect_model: str | None = None,
    pool: TextEncoderPool | None = None,
) -> tuple[GANModel, ResolvedModel, DatasetSession, TextHandle]:
    """A model rebuilt from one of our checkpoints, with the text encoder it was trained with;
    `expect_model` ("dfgan" or "dfgan.bird256") must name the model (and preset) the checkpoint holds.
    Pass the process's `pool` when the metrics will need encoders too: each is then loaded once (the
    frozen CLIP a GALIP/RATLIP model holds is the one the CLIP score uses)."""
    checkpoint = read_checkpoint(path)
    info = checkpoint["model"]
    missing = [k for k in ("name", "variant", "config", "text_encoder") if k not in info]
    if missing:
        raise T2IGanError(f"checkpoint {path}: its model entry lacks {', '.join(missing)}")
    if expect_model is not None:
        expected = parse_model_ref(expect_model)
        held = f"{info['name']}.{info.get('preset')}"
        if expected.name != info["name"] or expected.preset not in (None, info.get("preset")):
            raise ConfigError(f"--model {expect_model}: checkpoint {path} holds {held} ({info['variant']})")
    ref = parse_model_ref(info["variant"])
    resolved = resolve(ref, registry, preset=info.get("preset"))
    resolved.config = dict(info["config"])
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


# -------------------------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    from t2igan.bench.evaluation import EvalEncoders, eval_context, evaluate_model, inception_configs
    from t2igan.metrics.evaluate import caption_free, evaluate_folder, has_samples

    registry = _registry()
    device = resolve_device(args.device)
    source = Path(args.source)
    encoder_options, probe_options = _plan_settings(args)
    pool = TextEncoderPool(registry, device, options=encoder_options)  # one per process: each encoder once
    encoders = EvalEncoders(pool, probe_options)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if source.is_dir():
        data = DatasetSession.open(registry, args.data or "shapes", args.root)
        protocol = _capped(data.protocol(args.protocol), args)
        chosen = metrics or list(protocol.metrics)
        if metrics is None and not has_samples(source):
            chosen, dropped = caption_free(chosen, registry)
            if dropped:
                print(
                    f"{source}: no samples.json, so no image has a known caption: skipping "
                    f"{', '.join(dropped)}; scoring {', '.join(chosen) or 'nothing'}"
                )
            if not chosen:
                raise ConfigError(
                    f"protocol {protocol.name!r} of {data.name} has no metric that scores images alone; "
                    "give --metrics (e.g. fid,kid) or a folder written by t2igan with its samples.json"
                )
        configs = inception_configs(args.fid_mode, args.inception_weights, _fid_reference(args, data.name))
        if getattr(args, "second_clip", None):
            from t2igan.metrics.clip_score import parse_second_clip

            if not has_samples(source):
                raise ConfigError(
                    f"--second-clip: {source} has no samples.json, so no image has a known caption to score"
                )
            configs["clip_score_2"] = parse_second_clip(args.second_clip)
            chosen += [] if "clip_score_2" in chosen else ["clip_score_2"]
        resolution = _folder_resolution(source)
        context = eval_context(
            data,
            resolution,
            chosen,
            encoders,  # with the plan's [encoders] / [probe] settings, as for a checkpoint
            registry,
            device,
            protocol.batch_size,
        )
        result = evaluate_folder(
            source,
            data.test.records,
            protocol,
            context,
            chosen,
            configs,
            registry,
        )
        values = [v.as_dict() for v in result.values]
    elif source.is_file():
        model, resolved, data, text = load_trained(
            source, registry, device, args.data, args.root, encoder_options, pool=pool
        )
        protocol = _capped(data.protocol(args.protocol), args)
        started = time.time()
        records, _ = evaluate_model(
            model,
            text,
            data,
            protocol,
            encoders,
            registry,
            device,
            image_size(resolved),
            fid_mode=args.fid_mode,
            metrics=metrics,
            inception_weights=args.inception_weights,
            fid_reference=_fid_reference(args, data.name),
            second_clip=getattr(args, "second_clip", None),
        )
        values = [r.__dict__ for r in records]
        if getattr(args, "record", None):
            record = eval_record(source, resolved, data, text, protocol, records, device, started)
            print(f"run record: {write_record(run_dir(args.record, data.label, resolved.label, 0), record)}")
    else:
        raise ConfigError(f"{source}: no such checkpoint file or image folder")
    if getattr(args, "record", None) and not source.is_file():
        raise ConfigError(
            f"--record: {source} is a folder of images; a run record is written for a checkpoint"
        )
    for value in values:
        std = f" ± {value['std']:.4g}" if value.get("std") is not None else ""
        print(f"{value['name']}: {value['value']:.6g}{std}")
    if args.out:
        split = {"name": data.test.name, "sha256": data.test.sha256, "count": len(data.test)}
        write_json_atomic(
            args.out,
            {
                "source": str(source),
                "dataset": data.name,
                "split": split,
                "protocol": protocol.name,
                "values": values,
            },
        )
    return 0


def _capped(protocol: Any, args: argparse.Namespace) -> Any:
    """The protocol scoring only its first `--eval-images` images (every value then says quick)."""
    cap = getattr(args, "eval_images", None)
    if cap is None:
        return protocol
    if cap <= 0:
        raise ConfigError(f"--eval-images {cap}: expected a positive integer")
    return dataclasses.replace(protocol, max_images=cap)


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
    checkpoint = read_checkpoint(source)
    info = checkpoint["model"]
    progress = checkpoint.get("progress") or {}
    record = RunRecord(
        plan="eval",
        dataset=data.label,
        model=resolved.label,
        seed=0,
        status=STATUS_FINISHED,
        model_name=resolved.spec.name,
        preset=resolved.preset.name,
        config=resolved.config,
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
            "converted_from": info.get("converted_from") or [],
        },
        started=started,
        finished=time.time(),
    )
    return record


def _folder_resolution(folder: Path) -> int:
    from PIL import Image

    from t2igan.metrics.evaluate import has_samples, plain_images, read_samples

    first = folder / read_samples(folder)[0]["file"] if has_samples(folder) else plain_images(folder)[0]
    with Image.open(first) as image:
        return int(image.size[0])


# ------------------------------------------------------------------------------------------ sample


def run_sample(args: argparse.Namespace) -> int:
    from t2igan.train.samples import save_grid
    from t2igan.train.trainer import seeded_rng

    if args.n <= 0:
        raise ConfigError(f"--n {args.n}: expected a positive number of images per caption")
    out = Path(args.out)
    as_grid = out.suffix.lower() == ".png"
    if not as_grid:
        _check_sample_folder(out)  # before the model is loaded
    registry = _registry()
    device = resolve_device(args.device)
    model, resolved, _, text = load_trained(
        args.ckpt,
        registry,
        device,
        root=args.root,
        encoder_options=_plan_settings(args)[0],
        expect_model=args.model,
    )
    features, noise = grid_inputs(text, list(args.text), args.n, model.generator.noise_dim, args.seed, device)
    eval_noise = getattr(model, "eval_noise", None)
    if eval_noise is not None:  # the paper's sampling noise (DF-GAN truncates), seeded
        noise = (
            eval_noise(args.n, torch.Generator().manual_seed(args.seed)).repeat(len(args.text), 1).to(device)
        )
    with torch.no_grad(), seeded_rng(args.seed, device):  # in-forward randomness (ALR-GAN's CA) too
        images = model.generate(noise, features)
    if as_grid:
        path = save_grid(images, out, rows=len(args.text))
    else:
        path = save_sample_folder(out, images, list(args.text), args.n, args.seed, resolved.label)
    print(f"{len(images)} images ({len(args.text)} caption(s) x {args.n}) from {resolved.label}: {path}")
    return 0


SAMPLE_LISTING = "captions.json"


def save_sample_folder(
    folder: Path, images: torch.Tensor, captions: list[str], per_caption: int, seed: int, source: str
) -> Path:
    """`t2igan sample --out FOLDER`: one PNG per image (caption-major, as the grid) and captions.json saying
    which caption, noise column and seed each file was drawn with. Refuses a folder that already holds a
    listing, so an earlier sampling is never overwritten. Only same-size images go in the folder, so
    `t2igan eval FOLDER` scores it as plain images (its captions are free text, not a split's)."""
    from PIL import Image

    from t2igan.atomic import write_atomic
    from t2igan.metrics.images import to_uint8_nhwc

    _check_sample_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for index, array in enumerate(to_uint8_nhwc(images)):
        name = f"{index:04d}.png"
        picture = Image.fromarray(array)
        write_atomic(folder / name, lambda handle, picture=picture: picture.save(handle, format="PNG"))
        caption_index, column = divmod(index, per_caption)
        listing.append({"file": name, "caption": captions[caption_index], "column": column, "seed": seed})
    write_json_atomic(folder / SAMPLE_LISTING, {"source": source, "images": listing})
    return folder


def _check_sample_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {folder}: is a file; expected a folder, or a path ending in .png for a grid"
        )
    if (folder / SAMPLE_LISTING).exists():
        raise ConfigError(
            f"--out {folder}: already holds {SAMPLE_LISTING} from an earlier sampling; "
            "choose a new folder (or a .png path for a grid)"
        )


# ----------------------------------------------------------------------------------------- convert


def _fid_reference(args: argparse.Namespace, dataset: str) -> str | None:
    """`--fid-reference DATASET=NPZ` for this dataset (checked like a plan's `fid_reference`)."""
    from t2igan.bench.plan import fid_references

    return fid_references(args.fid_reference or None, args.fid_mode).get(dataset)


def run_convert(args: argparse.Namespace) -> int:
    """Official release file(s) into one of our checkpoints, loaded strictly into a paper preset's model."""
    registry = _registry()
    ref = parse_model_ref(args.model)
    spec = registry.model(ref.name)
    if spec.convert is None:
        raise ConfigError(f"model {spec.name!r} has no converter for official checkpoints")
    resolved = _paper_preset(ref, spec, registry)
    files = [Path(path) for path in args.checkpoint]
    repeated = sorted({str(path) for path in files if files.count(path) > 1})
    if repeated:
        raise ConfigError(f"{', '.join(repeated)} given more than once; give each network's file once")
    loaded = {path: load_state_dict_file(path, f"{spec.name} checkpoint") for path in files}
    model = build_model(resolved, BuildContext(registry, None, torch.device("cpu")))
    states = _convert_files(spec, loaded, model)
    ours = model.checkpoint_states()["model"]
    parts = sorted({key.split(".")[0] for key in ours})
    unknown = sorted(set(states) - set(parts))
    if unknown:
        raise T2IGanError(
            f"{spec.name} converter returned states for {unknown}, parts the model does not have"
        )
    named = ", ".join(map(str, files))
    if "generator" not in states:
        raise T2IGanError(
            f"{named}: no generator in the file(s); the release's netG file (or entry) holds it"
        )
    for part in sorted(set(parts) - set(states)):  # a G-only release: D keeps the built model's weights
        print(
            f"warning: no {part} in {named}: it keeps random weights (sampling and evaluation use the "
            "generator only; training on from this checkpoint would not)",
            file=sys.stderr,
        )
    whole = {key: value for key, value in ours.items() if key.split(".")[0] not in states}
    whole.update({f"{part}.{key}": value for part, state in states.items() for key, value in state.items()})
    # strict on everything our checkpoints hold; frozen parts (GALIP's CLIP) load from their own weights
    model.load_checkpoint_states({"model": whole}, f"{named} as {spec.name}.{resolved.preset.name}")
    info = {
        "name": spec.name,
        "variant": resolved.label,
        "preset": resolved.preset.name,
        "config": resolved.config,
        "image_size": image_size(resolved),
        "dataset": resolved.preset.dataset,
        "text_encoder": {"name": resolved.preset.text_encoder, "official": True},
        "converted_from": [{"file": str(path), "sha256": sha256_file(path)} for path in files],
    }
    if getattr(model, "official_clip_copy", None):  # checked against the CLIP when the file is loaded
        info["official_clip_copy"] = model.official_clip_copy
    path = torch_save_atomic(make_checkpoint(model_info=info, states=model.checkpoint_states()), args.out)
    print(f"converted {', '.join(map(str, files))} ({spec.name} {resolved.preset.name}) -> {path}")
    print(json.dumps(info["converted_from"]))
    return 0


def _convert_files(spec: Any, loaded: dict[Path, Any], model: GANModel) -> dict[str, dict[str, Any]]:
    """Each file through the plugin's converter; two files holding the same part is an error."""
    states: dict[str, dict[str, Any]] = {}
    for path, content in loaded.items():
        try:
            converted = spec.convert(content, model=model)
        except T2IGanError as exc:
            raise T2IGanError(f"{path}: {exc}") from exc
        twice = sorted(set(converted) & set(states))
        if twice:
            raise ConfigError(f"{path}: holds {twice} again; give each network's file once")
        states.update(converted)
    return states


def _paper_preset(ref: ModelRef, spec: Any, registry: Any) -> ResolvedModel:
    """The preset named in --model; without one, the model's only paper preset. A release's file does not
    say which dataset it was trained on (DF-GAN's bird, coco and flower files have one layout), so with
    several the user names it."""
    if ref.preset:
        return resolve(ref, registry)
    papers = [name for name, preset in spec.presets.items() if preset.dataset is not None]
    if len(papers) == 1:
        return resolve(ref, registry, preset=papers[0])
    raise ConfigError(
        f"--model {ref.label}: name the paper preset the release was trained with: "
        + ", ".join(f"{spec.name}.{name}" for name in papers)
    )
