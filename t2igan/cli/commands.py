"""The command handlers: each turns its parsed flags into calls of the Python API (`t2igan.api`) and
the library, and prints the results and paths to stdout; progress goes to stderr, through the `t2igan`
logger (`t2igan.cli.setup_logging`) and its bars (`t2igan.progress`)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from t2igan.errors import ConfigError
from t2igan.paths import check_output_file, check_output_folder

# ---------------------------------------------------------------------------------------- plugins


def cmd_plugins(args: argparse.Namespace) -> int:
    from t2igan.registry import get_registry

    registry = get_registry()
    rows = [info.as_dict() for info in registry.plugins.values()]
    if not args.all:
        rows = [r for r in rows if r["status"] != "ok" or r["provides"]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        version = f" {row['version']}" if row["version"] else ""
        origin = "built-in" if row["builtin"] else (row["distribution"] or "in-process")
        print(f"{row['name']}{version}  [{origin}]  status: {row['status']}")
        if row["error"]:
            print(f"  error: {row['error']}")
        for kind, names in row["provides"].items():
            print(f"  {kind}s: {', '.join(names)}")
        for what, license_ in row["licenses"].items():
            print(f"  license of {what}: {license_}")
        if row["hooks"]:
            print(f"  hooks: {', '.join(row['hooks'])}")
    return 0 if all(r["status"] == "ok" for r in rows) or not args.strict else 1


# ----------------------------------------------------------------------------------------- models


def cmd_models(args: argparse.Namespace) -> int:
    from t2igan.models import ModelRef, parameter_counts, resolve
    from t2igan.registry import get_registry, matching

    registry = get_registry()
    names = matching(registry.models, args.pattern) if args.pattern else sorted(registry.models)
    if args.pattern and not names:
        # a pattern may name presets too (`*.tiny`, `galip.cub*`)
        names = sorted(registry.models)
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = registry.model(name)
        for preset_name, preset in spec.presets.items():
            full = f"{name}.{preset_name}"
            if args.pattern and not (matching([name], args.pattern) or matching([full], args.pattern)):
                continue
            row: dict[str, Any] = {
                "model": name,
                "preset": preset_name,
                "dataset": preset.dataset,
                "image_size": preset.image_size,
                "batch_size": preset.batch_size,
                "text_encoder": preset.text_encoder,
                "license": spec.license,
                "citation": spec.citation,
                "source": preset.source,
                "paper_results": [vars(r) for r in spec.paper_results],
            }
            if not args.no_counts:
                try:
                    row["parameters"] = parameter_counts(
                        resolve(ModelRef(name, preset_name), registry), registry
                    )
                except Exception as exc:  # one model that fails to build must not hide the others
                    row["parameters"] = None
                    row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        if not args.pattern:
            print("no models registered")
            return 0
        import difflib

        close = difflib.get_close_matches(args.pattern, sorted(registry.models), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(registry.models))
        print(f"t2igan models: no model matches {args.pattern!r}{hint}; known: {known}", file=sys.stderr)
        return 1
    header = f"{'model.preset':<24} {'dataset':<12} {'size':>5} {'G params':>13} {'D params':>13} {'C params':>11}  license"
    print(header)
    for row in rows:
        counts = row.get("parameters") or {}
        g, d, c = (counts.get(part, {}).get("total") for part in ("G", "D", "C"))
        print(
            f"{row['model'] + '.' + row['preset']:<24} {row['dataset'] or '-':<12} {row['image_size']:>5} "
            f"{_count(g):>13} {_count(d):>13} {(_count(c) if c is not None else '-'):>11}  {row['license']}"
        )
        if row.get("error"):
            print(f"  error: {row['error']}")
    return 0


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


# ------------------------------------------------------------------------------------------- data


def cmd_data_check(args: argparse.Namespace) -> int:
    from t2igan.data.commands import check_dataset, format_check_report
    from t2igan.progress import show_progress
    from t2igan.training.session import parse_dataset_ref

    name, options = parse_dataset_ref(args.name)
    report = check_dataset(name, args.root, progress=show_progress(), **options)
    print(format_check_report(report))
    return 0 if report.ok else 1


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from t2igan.data.commands import prepare
    from t2igan.training.session import parse_dataset_ref

    name, options = parse_dataset_ref(args.name)
    splits = [s.strip() for s in args.splits.split(",")] if args.splits else None
    for path in prepare(name, args.root, splits, args.resolution, verify=args.verify or None, **options):
        print(f"cache ready: {path}")
    return 0


# ------------------------------------------------------------------------------------------ plans


def plan_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """([encoders], [probe]) of `--plan FILE`, or empty: the defaults."""
    if not getattr(args, "plan", None):
        return {}, {}
    from t2igan.benchmarking.plan import load_plan_file

    plan = load_plan_file(args.plan)
    return plan.encoders, plan.probe


# Plan fields that no `bench` flag carries one-to-one: the plan file (or `--root` / `--fid-reference`,
# read below as lists) sets them.
FILE_ONLY_FIELDS = frozenset(
    {"name", "fid_reference", "roots", "eval_seed", "encoders", "probe", "checkpoint_every", "keep_last"}
    | {"eval_every", "eval_every_images"}
)


def flag_fields() -> tuple[str, ...]:
    """The plan fields that `bench` flags of the same name set."""
    from t2igan.benchmarking.plan import PLAN_FIELDS

    return tuple(name for name in PLAN_FIELDS if name not in FILE_ONLY_FIELDS)


def plan_from_args(args: argparse.Namespace) -> Any:
    from t2igan.benchmarking.plan import load_plan_file, make_plan

    fields: dict[str, Any] = {name: getattr(args, name, None) for name in flag_fields()}
    if args.root:
        fields["roots"] = list(args.root)
    if getattr(args, "fid_reference", None):
        fields["fid_reference"] = list(args.fid_reference)
    if args.plan:
        return load_plan_file(args.plan, fields)
    return make_plan({k: v for k, v in fields.items() if v not in (None, [])})


def emit_commands(plan: Any, nproc: int = 1, plan_file: str | None = None) -> list[str]:
    """One `t2igan bench` command per run (for a cluster's job array); all write into the plan's folder,
    and `t2igan report OUT` merges them afterwards. With a plan file each command names it, so the fields
    no flag carries (encoders, probe, eval_every, checkpoint_every, keep_last, eval_seed, name) come from it; every
    field a flag carries is written out, so flags given beside the file are kept too."""
    commands = []
    for key in plan.runs():
        parts = ["t2igan", "bench", *([plan_file] if plan_file else [])]
        parts += ["--models", key.model.label, "--data", key.dataset, "--seeds", str(key.seed)]
        budget = plan.budget
        if budget.name == "steps":
            parts += ["--steps", str(budget.steps)]
        elif budget.name == "epochs":
            parts += ["--epochs", str(budget.epochs)]
        else:
            parts += ["--budget", budget.name]
        if plan.batch_size is not None:
            parts += ["--batch-size", str(plan.batch_size)]
        parts += ["--protocol", plan.protocol, "--fid-mode", plan.fid_mode, "--out", str(plan.out)]
        if plan.eval_images is not None:
            parts += ["--eval-images", str(plan.eval_images)]
        if plan.inception_weights:
            parts += ["--inception-weights", plan.inception_weights]
        if plan.second_clip:
            parts += ["--second-clip", plan.second_clip]
        for name, npz in plan.fid_reference.items():
            parts += ["--fid-reference", f"{name}={npz}"]
        for name, root in plan.roots.items():
            parts += ["--root", f"{name}={root}"]
        if plan.device:
            parts += ["--device", plan.device]
        if nproc != 1:
            parts += ["--nproc", str(nproc)]
        commands.append(shlex.join(parts))
    return commands


def _relaunch(args: argparse.Namespace, nproc: int, plan: Any) -> int:
    """`bench --nproc N`: the same command under torchrun (N processes on this machine, DDP training)."""
    import torch

    from t2igan.training.session import resolve_device

    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: expected a number of processes ≥ 1")
    if os.environ.get("WORLD_SIZE"):
        raise ConfigError("--nproc: this process already runs under torchrun; drop --nproc")
    device = resolve_device(plan.device)
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        raise ConfigError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    argv, rest = [], list(getattr(args, "argv", None) or sys.argv[1:])
    while rest:
        item = rest.pop(0)
        if item == "--nproc":
            rest = rest[1:]
        elif not item.startswith("--nproc="):
            argv.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return subprocess.run([*command, "-m", "t2igan", *argv], check=False).returncode


# ------------------------------------------------------------------------------------ bench, report


def cmd_bench(args: argparse.Namespace) -> int:
    from t2igan.benchmarking.records import STATUS_FINISHED
    from t2igan.benchmarking.runner import check_roots, run_plan, validate_plan
    from t2igan.registry import get_registry

    registry = get_registry()
    plan = validate_plan(plan_from_args(args), registry)
    if getattr(args, "emit_commands", False):
        print("\n".join(emit_commands(plan, getattr(args, "nproc", 1), args.plan)))
        return 0
    check_roots(plan)  # after --emit-commands: the jobs may run where the data is
    nproc = getattr(args, "nproc", 1)
    if nproc != 1:
        return _relaunch(args, nproc, plan)
    records, report = run_plan(plan, registry)
    if report is None:
        return 0  # rank 0 reports
    failed = [r for r in records if r.status != STATUS_FINISHED]
    print(f"\n{len(records) - len(failed)} of {len(records)} run(s) finished; tables in {plan.out}:")
    for path in report.files:
        print(f"  {path}")
    for record in failed:
        print(f"  FAILED {record.dataset} {record.model} seed {record.seed}: {record.error}")
    if report.notes:
        print("notes:")
        for note in report.notes:
            print(f"  {note}")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from t2igan.benchmarking.report import build_report

    report = build_report(args.runs)
    for path in report.files:
        print(path)
    for note in report.notes:
        print(f"note: {note}")
    return 0


# ------------------------------------------------------------------------------- train, eval, sample


def cmd_train(args: argparse.Namespace) -> int:
    from t2igan import api
    from t2igan.training import distributed

    result = api.train(
        args.model,
        args.data,
        preset=args.preset,
        root=args.root,
        steps=args.steps,
        epochs=args.epochs,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        device=args.device,
        encoders=plan_settings(args)[0],
        checkpoint_every=args.checkpoint_every,
        keep_last=args.keep_last,
    )
    if distributed.is_main_process():
        print(
            f"trained {result.steps} steps in {result.train_seconds:.0f} s on {distributed.world_size()} "
            f"process(es); checkpoint {result.final_checkpoint}"
        )
        if result.final_checkpoint is not None:
            print(f"samples: {Path(result.final_checkpoint).parent / 'samples' / 'final.png'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from t2igan import api

    if args.out:
        check_output_file(args.out)  # before the model and the metrics' networks load
    encoders, probe = plan_settings(args)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    result = api.evaluate(
        args.source,
        data=args.data,
        root=args.root,
        protocol=args.protocol,
        metrics=metrics,
        fid_mode=args.fid_mode,
        inception_weights=args.inception_weights,
        fid_reference=list(args.fid_reference or []),
        second_clip=args.second_clip,
        eval_images=args.eval_images,
        device=args.device,
        encoders=encoders,
        probe=probe,
        record=args.record,
    )
    for note in result.notes:
        print(note)
    if result.record is not None:
        print(f"run record: {result.record}")
    for value in result.values:
        std = f" ± {value['std']:.4g}" if value.get("std") is not None else ""
        print(f"{value['name']}: {value['value']:.6g}{std}")
    if args.out:
        from t2igan.atomic import write_json_atomic

        write_json_atomic(args.out, result.as_dict())
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from t2igan.training.samples import check_sample_folder, save_grid, save_sample_folder

    if args.n <= 0:
        raise ConfigError(f"--n {args.n}: expected a positive number of images per caption")
    out = Path(args.out)
    as_grid = out.suffix.lower() == ".png"
    if as_grid:  # checked before the model is loaded
        check_output_file(out)
    else:
        check_sample_folder(out)
        check_output_folder(out)
    model = _checked_model(args)
    images = model.generate(list(args.text), n=args.n, seed=args.seed, as_tensor=True)
    label = model.resolved.label
    if as_grid:
        path = save_grid(images, out, rows=len(args.text))
    else:
        path = save_sample_folder(out, images, list(args.text), args.n, args.seed, label)
    print(f"{len(images)} images ({len(args.text)} caption(s) x {args.n}) from {label}: {path}")
    return 0


def _checked_model(args: argparse.Namespace) -> Any:
    """The checkpoint's model; `--model`, when given, must name the model (and preset) it holds."""
    from t2igan import api
    from t2igan.registry import get_registry
    from t2igan.training.run import load_trained
    from t2igan.training.session import resolve_device

    device = resolve_device(args.device)
    model, resolved, data, text = load_trained(
        args.ckpt,
        get_registry(),
        device,
        root=args.root,
        encoder_options=plan_settings(args)[0],
        expect_model=args.model,
    )
    return api.T2IModel(model, resolved, data, text, device)


def cmd_convert(args: argparse.Namespace) -> int:
    """Official release file(s) into one of our checkpoints, loaded strictly into a paper preset's model."""
    from t2igan import api

    path, info = api.convert(args.checkpoint, args.model, args.out)
    files = ", ".join(str(item["file"]) for item in info["converted_from"])
    print(f"converted {files} ({info['name']} {info['preset']}) -> {path}")
    print(json.dumps(info["converted_from"]))
    return 0


# ----------------------------------------------------------------------------------------- encoders


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings -> a config mapping; values are read as JSON when they parse, else as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config {item!r}: expected KEY=VALUE, e.g. epochs=5")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Load the dataset's train and test splits, pre-train (or load the cached encoder), print its figures."""
    from t2igan import api
    from t2igan.text import pretrained

    pretrained.recipe(args.kind)  # an unknown encoder, or one without a recipe, fails before any data loads
    config: Mapping[str, Any] = parse_overrides(getattr(args, "config", None))
    train = api.load_split(args.data, args.root, "train")
    test = api.load_split(args.data, args.root, "test")
    device = getattr(args, "device", None) or "cpu"
    if args.out:
        out = Path(args.out)
        meta = pretrained.train_and_save(args.kind, args.data, train, test, out, config, device, args.seed)
        _print_pretrained(args.kind, meta.get("retrieval_top1"), meta["sha256"], out, meta["stats"], True)
        return 0
    encoder = pretrained.ensure_pretrained(
        args.kind, args.data, train, test, device=device, seed=args.seed, config=config
    )
    _print_pretrained(
        args.kind, encoder.retrieval_top1, encoder.sha256, encoder.path, encoder.stats, encoder.trained_now
    )
    return 0


def _print_pretrained(
    kind: str, top1: float | None, sha256: str, path: Path, stats: Mapping[str, Any], trained: bool
) -> None:
    figure = "n/a" if top1 is None else f"{top1:.3f}"
    how = f"trained in {float(stats.get('wall_seconds', 0.0)):.0f} s" if trained else "cached"
    epochs = stats.get("epochs")
    print(f"{kind}: text->image top-1 among 100 = {figure} ({how}, {epochs} epochs)")
    print(f"sha256 {sha256}")
    print(f"path   {path}")
    sys.stdout.flush()
