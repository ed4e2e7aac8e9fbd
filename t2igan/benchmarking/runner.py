"""The benchmark runner: every (dataset, model, seed) of a plan trains through the shared Trainer, is
evaluated by the dataset's protocol, and leaves a record; finished runs are skipped, interrupted ones
resume from their last checkpoint, a failing one is recorded as failed and the plan goes on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from t2igan.atomic import write_json_atomic, write_text_atomic
from t2igan.benchmarking.claims import RunClaim, describe_holder
from t2igan.benchmarking.costs import inference_throughput, run_costs
from t2igan.benchmarking.evaluation import EvalEncoders, evaluate_model
from t2igan.benchmarking.plan import BenchPlan, RunKey
from t2igan.benchmarking.records import (
    COST_MODE,
    STATUS_FAILED,
    STATUS_FINISHED,
    RunRecord,
    dataset_dir,
    environment,
    iter_records,
    protocol_entry,
    read_record,
    run_dir,
    write_record,
)
from t2igan.errors import ConfigError, T2IGanError
from t2igan.metrics.values import MetricValue
from t2igan.models import ModelRef, choose_preset
from t2igan.paths import check_output_folder
from t2igan.training import distributed
from t2igan.training.run import PreparedRun, prepare_run
from t2igan.training.session import (
    DatasetSession,
    TextEncoderPool,
    check_encoder_options,
    fixed_captions,
    resolve_device,
)
from t2igan.training.trainer import TrainingDiverged

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

logger = logging.getLogger(__name__)
CLAIM_POLL_SECONDS = 2.0  # how often a process that has run what it could looks at runs others hold


def write_plan(out: Path, plan: dict[str, Any]) -> Path:
    """`plan.json` is the plan of the latest invocation; every plan ever run into `out` is also kept as
    `plans/<sha256[:12]>.json`, so a second plan run into the same folder (another model, more seeds)
    never erases what the earlier runs were planned with."""
    text = json.dumps(plan, sort_keys=True)
    write_json_atomic(out / "plans" / f"{hashlib.sha256(text.encode()).hexdigest()[:12]}.json", plan)
    return write_json_atomic(out / "plan.json", plan)


def check_fid_mode(out: Path, plan: BenchPlan) -> None:
    """One folder is one table, and a table never mixes FID modes (their numbers are not comparable): a
    plan whose fid_mode differs from that of a plan run earlier into `out` on the same dataset is refused
    before anything trains."""
    for path in sorted((out / "plans").glob("*.json")):
        earlier = json.loads(path.read_text(encoding="utf-8"))
        shared = sorted(set(earlier.get("datasets", [])) & set(plan.datasets))
        if shared and earlier.get("fid_mode", "standard") != plan.fid_mode:
            raise ConfigError(
                f"{out}: holds runs on {', '.join(shared)} scored with fid_mode {earlier.get('fid_mode')!r} "
                f"({path}); this plan asks for {plan.fid_mode!r}, and one table never mixes FID modes. "
                "Use another --out folder, or the same --fid-mode"
            )


def expand_models(plan: BenchPlan, registry: Registry) -> list[ModelRef]:
    """`all` (an empty list) means every registered model, in name order."""
    if plan.models:
        return list(plan.models)
    return [ModelRef(name) for name in sorted(registry.models)]


def validate_plan(plan: BenchPlan, registry: Registry) -> BenchPlan:
    """`all` expanded, and every model and dataset name looked up: a misspelt one fails here, once, not
    once per run."""
    plan.models = expand_models(plan, registry)
    for ref in plan.models:
        registry.model(ref.name)
    for label in plan.datasets:
        registry.dataset(label.split(":", 1)[0])
    check_encoder_options(plan.encoders, registry)
    return plan


def check_roots(plan: BenchPlan) -> None:
    """Every dataset folder the plan needs exists, checked before the first run: a missing root would
    otherwise fail each of its runs in turn, after the earlier ones had trained."""
    from t2igan.data.commands import resolve_root

    for label in plan.datasets:
        name = label.split(":", 1)[0]
        try:
            resolve_root(name, plan.roots.get(name))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (bench: --root {name}=DIR, or `roots` in the plan file)") from None


def run_plan(plan: BenchPlan, registry: Registry, progress: bool = True) -> tuple[list[RunRecord], Any]:
    """Validate the plan, run every run of it (joining torchrun's process group when launched so), and
    build its report. Returns the records and the report (None on ranks other than 0, which report
    nothing)."""
    from t2igan.benchmarking.report import build_report

    validate_plan(plan, registry)
    check_roots(plan)
    check_output_folder(plan.out)  # before any encoder or model is built
    device = distributed.init_from_environment(str(resolve_device(plan.device)))  # torchrun: join
    runs = plan.runs()
    main = distributed.is_main_process()
    if main:
        logger.info(
            "plan %s: %d model(s) x %d dataset(s) x %d seed(s) = %d run(s), budget %s, protocol %s, "
            "device %s, %d process(es); writing to %s",
            plan.name,
            len(plan.models),
            len(plan.datasets),
            len(plan.seeds),
            len(runs),
            plan.budget.describe(),
            plan.protocol,
            device,
            distributed.world_size(),
            plan.out,
        )
    records = BenchRunner(plan, registry, device, progress=progress).run()
    return records, (build_report(plan.out) if main else None)


class BenchRunner:
    def __init__(self, plan: BenchPlan, registry: Registry, device: torch.device, progress: bool = True):
        self.plan, self.registry, self.device, self.progress = plan, registry, device, progress
        if not plan.models:
            self.plan.models = expand_models(plan, registry)
        self.datasets: dict[str, DatasetSession] = {}
        # under torchrun every rank runs the plan; training is shared, rank 0 evaluates and writes
        self.writer = distributed.is_main_process()
        self.encoders = TextEncoderPool(registry, device, progress, plan.encoders)
        self.eval_encoders = EvalEncoders(self.encoders, plan.probe, progress)
        self.checked_splits: set[str] = set()  # dataset labels whose folder holds no record of another split

    def dataset(self, label: str) -> DatasetSession:
        if label not in self.datasets:
            name = label.split(":", 1)[0]
            root = self.plan.roots.get(label) or self.plan.roots.get(name)
            self.datasets[label] = DatasetSession.open(self.registry, label, root, self.progress)
        return self.datasets[label]

    def run(self) -> list[RunRecord]:
        out = Path(self.plan.out)
        check_fid_mode(out, self.plan)
        if self.writer:
            out.mkdir(parents=True, exist_ok=True)
            write_plan(out, self.plan.as_dict())
        keys = self.plan.runs()
        labels = {key: f"[{number}/{len(keys)}] {key.label}" for number, key in enumerate(keys, 1)}
        records: dict[RunKey, RunRecord] = {}
        waiting: list[RunKey] = []  # runs another process holds: taken once it finishes or dies
        for key in keys:
            record = self.run_one(key, labels[key])
            if record is None:
                waiting.append(key)
            else:
                records[key] = record
        if waiting and self.writer:
            logger.info(
                "waiting for %d run(s) that other processes hold: %s",
                len(waiting),
                ", ".join(labels[key] for key in waiting),
            )
        while waiting:
            time.sleep(CLAIM_POLL_SECONDS)
            still = []
            for key in waiting:
                record = self.run_one(key, labels[key], say_held=False)
                if record is None:
                    still.append(key)
                else:
                    records[key] = record
            waiting = still
        return [records[key] for key in keys]

    def run_one(self, key: RunKey, label: str, say_held: bool = True) -> RunRecord | None:
        """Train and evaluate one run, or reuse its finished record; None when another live process holds
        its claim (`say_held`: say so)."""
        folder = run_dir(self.plan.out, key.dataset, key.model.variant, key.seed)
        self._check_folder_splits(key)
        say, warn = (logger.info, logger.warning) if self.writer else (_quiet, _quiet)
        previous, finished = self._finished(folder, key)
        if finished:
            say(f"{label}: finished earlier, skipped")
            return previous
        claim = RunClaim(folder)
        if not distributed.broadcast_flag(claim.acquire() if self.writer else False):
            if say_held:
                say(f"{label}: claimed by {describe_holder(claim.holder())}; taking the next run, back later")
            return None
        with claim:
            if claim.previous:
                say(
                    f"{label}: taking over from {describe_holder(claim.previous)}, which ended without finishing"
                )
            previous, finished = self._finished(folder, key)  # the holder we waited for may have finished it
            if finished:
                say(f"{label}: finished by another process meanwhile, skipped")
                return previous
            return self._run_claimed(key, folder, label, previous, say, warn)

    def _finished(self, folder: Path, key: RunKey) -> tuple[RunRecord | None, bool]:
        """The run's stored record, and whether it is finished, as rank 0 sees it: under torchrun every
        rank takes the same branch even while another bench process writes the record."""
        previous = self._previous(folder, key)
        finished = distributed.broadcast_flag(previous is not None and previous.status == STATUS_FINISHED)
        if finished and (previous is None or previous.status != STATUS_FINISHED):
            previous = self._previous(folder, key)  # rank 0 saw it finished: it is complete on disk now
        return previous, finished

    def _previous(self, folder: Path, key: RunKey) -> RunRecord | None:
        previous = read_record(folder / "record.json") if (folder / "record.json").is_file() else None
        if previous is not None:
            self._check_same_measure(previous, folder, key)
        return previous

    def _run_claimed(
        self, key: RunKey, folder: Path, label: str, previous: RunRecord | None, say: Any, warn: Any
    ) -> RunRecord:
        say(f"{label}: {'resuming' if previous is not None else 'starting'}")
        record = RunRecord(
            plan=self.plan.name,
            dataset=key.dataset,
            model=key.model.variant,
            seed=key.seed,
            started=time.time(),
            environment=environment(self.device),
        )
        try:
            self._execute(key, folder, record, label)
            record.status = STATUS_FINISHED
        except KeyboardInterrupt as exc:
            record.status, record.error = (
                STATUS_FAILED,
                f"interrupted ({exc or 'KeyboardInterrupt'}); run again to resume",
            )
            record.finished = time.time()
            self._write(folder, record)
            raise
        except Exception as exc:  # one run failing must not stop the plan
            record.status = STATUS_FAILED
            record.error = f"{type(exc).__name__}: {exc}"
            if self.writer:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            warn(f"{label}: FAILED: {record.error} (traceback in {folder / 'error.log'})")
            if isinstance(exc, _RanksApart):  # the other processes cannot go on in step: stop them all
                record.finished = time.time()
                self._write(folder, record)
                raise
        record.finished = time.time()
        self._write(folder, record)
        return record

    def _write(self, folder: Path, record: RunRecord) -> None:
        if self.writer:
            write_record(folder, record)

    def _inception_settings(self, dataset: str) -> dict[str, Any]:
        """FID mode, local Inception weights and the dataset's official reference statistics, if given."""
        return {
            "fid_mode": self.plan.fid_mode,
            "inception_weights": self.plan.inception_weights,
            "fid_reference": self.plan.fid_reference.get(dataset.split(":", 1)[0]),
        }

    def _check_same_measure(self, previous: RunRecord, folder: Path, key: RunKey) -> None:
        """A run already in the folder (finished: reused as this plan's result; unfinished: resumed) must
        have been made with this plan's budget and protocol; otherwise the table would mix them."""
        budget, differs = self.plan.budget, []
        held = previous.budget or {}
        if held.get("name") and held["name"] != budget.name:
            differs.append(f"budget {held['name']!r} (this plan: {budget.name!r})")
        elif budget.steps is not None and held.get("steps") not in (None, budget.steps):
            differs.append(f"{held['steps']} steps (this plan: {budget.steps})")
        elif budget.epochs is not None and held.get("epochs") not in (None, budget.epochs):
            differs.append(f"{held['epochs']} epochs (this plan: {budget.epochs})")
        batch_size = self._batch_size(key)
        if held.get("batch_size") not in (None, batch_size):
            differs.append(f"batch size {held['batch_size']} (this plan: {batch_size})")
        protocol = (previous.protocol or {}).get("name")
        if protocol and protocol != self.plan.protocol:
            differs.append(f"protocol {protocol!r} (this plan: {self.plan.protocol!r})")
        elif protocol and (previous.protocol or {}).get("max_images") != self._image_cap(previous):
            differs.append(
                f"{(previous.protocol or {}).get('max_images') or 'all'} evaluated images "
                f"(this plan: {self._image_cap(previous) or 'all'})"
            )
        if differs:
            raise ConfigError(
                f"{folder}: holds a run made with {', '.join(differs)}; one folder is one table and would "
                "mix them — use another --out folder (or delete that run folder to redo it)"
            )

    def _batch_size(self, key: RunKey) -> int:
        """The training batch of a run: --batch-size, else its preset's."""
        if self.plan.batch_size is not None:
            return self.plan.batch_size
        spec = self.registry.model(key.model.name)
        preset = choose_preset(spec, self.dataset(key.dataset).name, key.model.preset)
        return spec.preset(preset).batch_size

    def _image_cap(self, previous: RunRecord) -> int | None:
        """The image cap this plan evaluates `previous`'s dataset with: --eval-images, else the protocol's."""
        if self.plan.eval_images is not None:
            return self.plan.eval_images
        return self.dataset(previous.dataset).protocol(self.plan.protocol).max_images

    def _check_folder_splits(self, key: RunKey) -> None:
        """One folder is one table: a finished record of this dataset measured on another split (a changed
        generator, other files) refuses the plan before anything trains — it would neither be reused as
        this plan's result nor sit beside it. Checked once per dataset per plan."""
        if key.dataset in self.checked_splits:
            return
        data = self.dataset(key.dataset)
        for path, previous in iter_records(dataset_dir(self.plan.out, key.dataset)):
            if previous.status != STATUS_FINISHED or previous.dataset != key.dataset:
                continue
            recorded_train = (previous.split.get("train") or {}).get("sha256")
            for which, current, recorded in (
                ("test", data.test.sha256, previous.split.get("sha256")),
                ("train", data.train.sha256, recorded_train),
            ):
                if recorded and recorded != current:
                    raise T2IGanError(
                        f"{path} was measured with {which} split sha256 {recorded[:12]}, but {key.dataset} "
                        f"now has {current[:12]}; results on different splits cannot share a table — use a "
                        "new --out folder (or delete that run folder to redo it)"
                    )
        self.checked_splits.add(key.dataset)

    def _execute(self, key: RunKey, folder: Path, record: RunRecord, label: str) -> None:
        run = self._prepare(key, folder, record, label)
        # outside rank 0's head start: building the Trainer broadcasts rank 0's weights, a collective
        trainer = run.trainer(on_step=self._progress_evaluator(run, folder))
        try:
            result = trainer.fit()
        except TrainingDiverged:
            raise  # every rank saw it at the same step (a collective check): the plan goes on together
        except Exception as exc:
            if distributed.world_size() > 1:
                raise _RanksApart(str(exc)) from exc
            raise
        if not self.writer:
            return  # rank 0 evaluates and records; the others go on to the next run's training
        record.history = _loss_history(trainer.log_path) + _read_history(folder / HISTORY_FILE)
        self._evaluate(key, folder, record, label, run, result)

    def _protocol(self, data: DatasetSession) -> Any:
        protocol = data.protocol(self.plan.protocol)
        if self.plan.eval_images is not None:  # capped: every value says quick (metrics/evaluate.is_quick)
            protocol = dataclasses.replace(protocol, max_images=self.plan.eval_images)
        return protocol

    def _prepare(self, key: RunKey, folder: Path, record: RunRecord, label: str) -> PreparedRun:
        data = self.dataset(key.dataset)
        # the plan's budget as given; the step count it resolves to and the batch size are added below
        budget = self.plan.budget
        record.budget = {"name": budget.name, "steps": budget.steps, "epochs": budget.epochs}

        def describe(resolved: Any, text: Any) -> None:
            record.model_name, record.preset = resolved.spec.name, resolved.preset.name
            record.config = resolved.settings
            record.paper_results = [vars(r) for r in resolved.spec.paper_results]
            record.optimises = list(resolved.spec.optimises)
            record.split = data.split_info()
            record.protocol = protocol_entry(self._protocol(data))
            record.text_encoder = text.info
            self._write(folder, record)  # a "running" record says what is being done, even if it dies

        run = prepare_run(
            self.registry,
            data,
            key.model,
            self.encoders,
            self.device,
            folder / "train",
            key.seed,
            steps=budget.steps,
            epochs=budget.epochs,
            batch_size=self._batch_size(key),
            grid_seed=self.plan.eval_seed,
            progress=self.progress,
            label=label,
            checkpoint_every=self.plan.checkpoint_every,
            keep_last=self.plan.keep_last,
            on_resolved=describe,
        )
        # images are scored at the generator's own resolution (the papers': 256 px, GALIP's 224); real images
        # are brought to it, then each metric resizes both as its back-end does (Inception: 299)
        record.protocol["resolution"] = run.size
        record.budget.update(steps=run.steps, batch_size=run.batch_size)
        return run

    def _evaluate(
        self, key: RunKey, folder: Path, record: RunRecord, label: str, run: PreparedRun, result: Any
    ) -> None:
        protocol = self._protocol(run.data)
        metrics, evaluation = evaluate_model(
            run.model,
            run.text,
            run.data,
            protocol,
            self.eval_encoders,
            self.registry,
            self.device,
            run.size,
            folder,
            progress=self.progress,
            second_clip=self.plan.second_clip,
            **self._inception_settings(key.dataset),
        )
        throughput_text = run.text.encode(
            fixed_captions(run.data.test, record.budget["batch_size"]), self.device
        )
        record.costs = run_costs(
            run.model, result, inference_throughput(run.model, throughput_text, self.device)
        )
        record.costs["eval_seconds"] = evaluation.seconds
        record.costs["processes"] = distributed.world_size()  # torchrun: train costs are of N processes
        record.metrics = metrics + cost_metrics(record.costs)
        headline = {*protocol.metrics, "clip_score_2"}  # not every per-attribute value of a probe
        values = ", ".join(f"{m.name} {m.value:.4g}" for m in metrics if m.name in headline)
        logger.info("%s: %s", label, values)

    def _progress_evaluator(self, run: PreparedRun, folder: Path) -> Any:
        """With `eval_every`, a callback scoring the model on the first `eval_every_images` test captions
        every N steps (a `quick` protocol, labelled so) into history.jsonl: the metric-vs-step curves.
        A resumed run keeps the lines of the steps its checkpoint holds."""
        every = self.plan.eval_every
        if not every:
            return None
        model, text, data, size = run.model, run.text, run.data, run.size
        protocol = self._protocol(data)
        quick = dataclasses.replace(
            protocol, name=f"quick-{protocol.name}", sample_times=1, max_images=self.plan.eval_every_images
        )
        path = folder / HISTORY_FILE

        def evaluate_now(step: int) -> None:
            if step % every:
                return
            metrics, _ = evaluate_model(
                model,
                text,
                data,
                quick,
                self.eval_encoders,
                self.registry,
                self.device,
                size,
                progress=False,
                **self._inception_settings(data.label),
            )
            lines = [
                {"step": step, "metric": m.name, "value": m.value}
                for m in metrics
                if m.name in protocol.metrics
            ]
            kept = [h for h in _read_history(path) if h["step"] < step]
            write_json_lines(path, kept + lines)

        return evaluate_now


HISTORY_FILE = "history.jsonl"


class _RanksApart(T2IGanError):
    """Training failed in one process of a torchrun job: the others cannot follow it to the next run, so
    the job stops (the run is recorded as failed; running the plan again resumes it)."""


def _quiet(message: str) -> None:
    """Ranks other than 0 say nothing: one progress display per job."""


def _read_history(path: Path) -> list[dict[str, Any]]:
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    import json

    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def _loss_history(log_path: Path) -> list[dict[str, Any]]:
    """Loss curves for the metric-vs-step plot: every logged step's losses, from the Trainer's log."""
    import json

    if not log_path.is_file():
        return []
    history = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line.strip() else None
        if entry:
            history.extend(
                {"step": entry["step"], "metric": name, "value": value}
                for name, value in entry["losses"].items()
            )
    return history


def cost_metrics(costs: dict[str, Any]) -> list[MetricValue]:
    """Costs as table columns too (quality vs. cost plots read them from results.csv)."""

    def cost(name: str, value: float, higher_is_better: bool | None) -> MetricValue:
        provenance = {"backend": "t2igan", "mode": COST_MODE}
        return MetricValue(name, float(value), provenance=provenance, higher_is_better=higher_is_better)

    metrics = [
        cost("images_per_second", costs["images_per_second"], True),
        cost("train_seconds", costs["train_seconds"], False),
    ]
    if costs.get("step_seconds_median") is not None:
        metrics.append(cost("step_seconds", costs["step_seconds_median"], False))
    for part, counts in costs["parameters"].items():
        if counts["trainable"] or not counts["frozen"]:
            metrics.append(cost(f"params_{part}", counts["trainable"], None))
        if counts["frozen"]:  # frozen parts (GALIP's CLIP, ALR-GAN's LVR features) in their own column
            metrics.append(cost(f"params_{part}_frozen", counts["frozen"], None))
    return metrics
