"""`t2igan bench` and `t2igan report`: a plan from flags or a TOML file, run by the BenchRunner, then
the tables and plots written beside the records."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any

import torch

from t2igan.bench.plan import BenchPlan, load_plan_file, make_plan
from t2igan.bench.records import STATUS_FINISHED
from t2igan.errors import ConfigError
from t2igan.train import distributed
from t2igan.train.session import resolve_device

FLAG_FIELDS = (
    "models",
    "data",
    "seeds",
    "budget",
    "steps",
    "epochs",
    "batch_size",
    "protocol",
    "eval_images",
    "fid_mode",
    "inception_weights",
    "second_clip",
    "out",
    "device",
)


def plan_from_args(args: argparse.Namespace) -> BenchPlan:
    fields: dict[str, Any] = {name: getattr(args, name, None) for name in FLAG_FIELDS}
    if args.root:
        fields["roots"] = list(args.root)
    if getattr(args, "fid_reference", None):
        fields["fid_reference"] = list(args.fid_reference)
    if args.plan:
        return load_plan_file(args.plan, fields)
    return make_plan({k: v for k, v in fields.items() if v not in (None, [])})


def emit_commands(plan: BenchPlan, nproc: int = 1, plan_file: str | None = None) -> list[str]:
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


def _check_roots(plan: BenchPlan) -> None:
    """Every dataset folder the plan needs exists, checked before the first run: a missing root would
    otherwise fail each of its runs in turn, after the earlier ones had trained."""
    from t2igan.data.commands import resolve_root

    for label in plan.datasets:
        name = label.split(":", 1)[0]
        try:
            resolve_root(name, plan.roots.get(name))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (bench: --root {name}=DIR, or `roots` in the plan file)") from None


def _relaunch(args: argparse.Namespace, nproc: int, plan: BenchPlan) -> int:
    """`bench --nproc N`: the same command under torchrun (N processes on this machine, DDP training)."""
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


def run_bench(args: argparse.Namespace) -> int:
    from t2igan.bench.report import build_report
    from t2igan.bench.runner import BenchRunner, expand_models
    from t2igan.registry import get_registry

    plan = plan_from_args(args)
    registry = get_registry()
    plan.models = expand_models(plan, registry)
    for ref in plan.models:  # a misspelt model fails here, once, not once per run
        registry.model(ref.name)
    for label in plan.datasets:
        registry.dataset(label.split(":", 1)[0])
    if getattr(args, "emit_commands", False):
        print("\n".join(emit_commands(plan, getattr(args, "nproc", 1), args.plan)))
        return 0
    _check_roots(plan)  # after --emit-commands: the jobs may run where the data is
    nproc = getattr(args, "nproc", 1)
    if nproc != 1:
        return _relaunch(args, nproc, plan)
    device = distributed.init_from_environment(str(resolve_device(plan.device)))  # torchrun: join
    runs = plan.runs()
    main = distributed.is_main_process()
    if main:
        print(
            f"plan {plan.name}: {len(plan.models)} model(s) x {len(plan.datasets)} dataset(s) x "
            f"{len(plan.seeds)} seed(s) = {len(runs)} run(s), budget {plan.budget.describe()}, "
            f"protocol {plan.protocol}, device {device}, {distributed.world_size()} process(es); "
            f"writing to {plan.out}",
            flush=True,
        )
    records = BenchRunner(plan, registry, device, progress=True).run()
    if not main:
        return 0  # rank 0 reports
    report = build_report(plan.out)
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


def run_report(args: argparse.Namespace) -> int:
    from t2igan.bench.report import build_report

    report = build_report(args.runs)
    for path in report.files:
        print(path)
    for note in report.notes:
        print(f"note: {note}")
    return 0
