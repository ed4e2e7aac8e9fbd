"""One Trainer for every model: it drives a GANModel's d_step/g_step and owns optimisers,
checkpoints (atomic, resumable to the same numbers), progress bar, JSONL log and sample grids."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from t2igan.atomic import remove_temporaries, write_text_atomic
from t2igan.errors import T2IGanError
from t2igan.nn.interfaces import Batch, GANModel, LossDict, TextFeatures
from t2igan.progress import progress_bar
from t2igan.training import distributed
from t2igan.training.checkpoint import (
    FINAL_FILE,
    check_text_encoder,
    make_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    save_checkpoint,
    set_rng_state,
    step_checkpoints,
)
from t2igan.training.memory import PeakMemoryMeter

logger = logging.getLogger(__name__)


class TrainingDiverged(T2IGanError):
    """A loss became NaN or infinite: the run is recorded as failed with the step and the losses."""


class BatchSource(Protocol):
    """Where batches come from: a fixed number per epoch, reproducible from (epoch, start index)."""

    steps_per_epoch: int

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]: ...


@dataclass
class TrainerConfig:
    out_dir: Path
    total_steps: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float] = (0.0, 0.9)
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 500
    keep_last: int = 2
    sample_every: int = 0  # 0: only at the end
    log_every: int = 10
    progress: bool = True
    model_info: Mapping[str, Any] = field(default_factory=dict)  # name, variant, preset, config, ...
    label: str = "train"  # the progress bar's description, e.g. "[2/6] shapes dfgan seed 0"
    # weights of 4-D layers and the batch images in NHWC order (unless the model's `channels_last` is
    # False): the same arithmetic, and oneDNN's convolutions run faster on it (benchmarks/train_speed.py
    # --memory-format compares the two)
    channels_last: bool = True


@dataclass
class TrainResult:
    steps: int
    resumed_from: int
    train_seconds: float
    step_seconds_median: float | None
    last_losses: dict[str, float]
    final_checkpoint: Path | None
    peak_memory_bytes: int | None
    peak_memory_start_bytes: int | None = None  # what the process held when the run started
    peak_memory_method: str = ""


def _as_floats(losses: LossDict) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in losses.items()}


class Trainer:
    def __init__(
        self,
        model: GANModel,
        source: BatchSource,
        config: TrainerConfig,
        sample_text: TextFeatures | None = None,
        sample_noise: Tensor | None = None,
        on_step: Callable[[int], None] | None = None,
    ):
        self.model = model
        self.on_step = on_step  # called after every step with the step number (mid-run evaluations)
        self.source = source
        self.config = config
        self.device = torch.device(config.device)
        self.is_writer = distributed.is_main_process()
        self.model.to(self.device)
        distributed.broadcast_module(self.model)  # torchrun: every replica starts from rank 0's weights
        nhwc = config.channels_last and getattr(model, "channels_last", True)  # a model may need NCHW
        self.memory_format = torch.channels_last if nhwc else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.opt_g = torch.optim.Adam(model.generator_parameters(), lr=config.lr_g, betas=config.betas)
        self.opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=config.lr_d, betas=config.betas)
        self.sample_text = sample_text
        self.sample_noise = sample_noise
        self.out_dir = Path(config.out_dir)
        self.step = 0
        # training wall time: carried in checkpoints across resumes; `on_step` (in-training evaluation)
        # is not training and is left out
        self._seconds_before = 0.0  # restored from the checkpoint a run resumes from
        self._started: float | None = None
        self._hook_seconds = 0.0

    def train_seconds(self) -> float:
        """Seconds spent training this run so far, over every session that worked on it."""
        if self._started is None:
            return self._seconds_before
        return self._seconds_before + time.perf_counter() - self._started - self._hook_seconds

    # ------------------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return make_checkpoint(
            model_info=self.config.model_info,
            states=self.model.checkpoint_states(),
            optimizers={"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            progress={
                "step": self.step,
                "total_steps": self.config.total_steps,
                "train_seconds": self.train_seconds(),
            },
        )

    def save(self, name: str | None = None) -> Path | None:
        if not self.is_writer:
            return None
        path = self.out_dir / (name or f"step{self.step:08d}.pt")
        save_checkpoint(self.state(), path)
        if name is None:
            prune_checkpoints(self.out_dir, self.config.keep_last)
        return path

    def resume(self) -> int:
        """Continue from the newest intact checkpoint in the run folder, if any; returns its step. A damaged
        newer one is named in a warning and left in place (training past its step replaces it)."""
        if self.is_writer:
            left = remove_temporaries(self.out_dir)
            if left:
                logger.info(
                    "removed %d temporary file(s) of an interrupted write in %s", len(left), self.out_dir
                )
        candidates = [path for _, path in reversed(step_checkpoints(self.out_dir))]
        if (self.out_dir / FINAL_FILE).exists():
            candidates.insert(0, self.out_dir / FINAL_FILE)
        if not candidates:
            return 0
        damaged: list[str] = []
        for path in candidates:
            try:
                checkpoint = read_checkpoint(path)
                break
            except T2IGanError as exc:
                damaged.append(str(exc))
        else:
            raise T2IGanError(
                f"{self.out_dir}: no intact checkpoint to resume from: {'; '.join(damaged)}. Move them away "
                "to train from the start, or use a new output folder"
            )
        if damaged and self.is_writer:
            logger.warning("resuming from %s, the newest intact checkpoint: %s", path, "; ".join(damaged))
        if int(checkpoint["progress"]["step"]) > self.config.total_steps:
            raise T2IGanError(
                f"{self.out_dir}: holds a checkpoint at step {checkpoint['progress']['step']}, past this run's "
                f"budget of {self.config.total_steps} steps; use a new output folder or a larger budget"
            )
        check_text_encoder(
            (checkpoint.get("model") or {}).get("text_encoder"),
            self.config.model_info.get("text_encoder"),
            f"{path}",
            "resuming would mix two encoders' features in one run (a rebuilt or replaced encoder) — restore "
            "the original weights, or start the run in a new folder",
        )
        self.model.load_checkpoint_states(checkpoint["states"], f"checkpoint {path}")
        self.opt_g.load_state_dict(checkpoint["optimizers"]["generator"])
        self.opt_d.load_state_dict(checkpoint["optimizers"]["discriminator"])
        if checkpoint.get("rng"):
            set_rng_state(checkpoint["rng"])
        self.step = int(checkpoint["progress"]["step"])
        self._seconds_before = float(checkpoint["progress"].get("train_seconds", 0.0))
        self._truncate_log(self.step)
        return self.step

    # ------------------------------------------------------------------------------------- steps
    def prepare(self, batch: Batch) -> Batch:
        """This process's share of a loader batch, on the device, its images in the trainer's memory format."""
        batch = distributed.shard_batch(batch).to(self.device)
        batch.images = batch.images.contiguous(memory_format=self.memory_format)
        return batch

    def _optimise(self, optimizer: torch.optim.Optimizer, losses: LossDict) -> LossDict:
        if "loss" not in losses:
            raise T2IGanError(
                f"{type(self.model).__name__} returned losses without a 'loss' entry: {sorted(losses)}"
            )
        loss = losses["loss"]
        if not distributed.all_finite(loss):
            raise TrainingDiverged(f"step {self.step}: non-finite loss {_as_floats(losses)}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        distributed.average_gradients(params)
        optimizer.step()
        return losses

    def d_step(self, batch: Batch) -> dict[str, float]:
        result = self.model.d_step(batch)
        logged: dict[str, float] = {}
        phases = [result] if isinstance(result, Mapping) else result
        for index, losses in enumerate(phases):
            self._optimise(self.opt_d, losses)
            prefix = "d_" if index == 0 else f"d{index}_"
            logged.update({prefix + k: v for k, v in _as_floats(losses).items()})
        return logged

    def g_step(self, batch: Batch) -> dict[str, float]:
        losses = self._optimise(self.opt_g, self.model.g_step(batch))
        return {"g_" + k: v for k, v in _as_floats(losses).items()}

    # ----------------------------------------------------------------------------------- the loop
    def fit(self, resume: bool = True) -> TrainResult:
        torch.manual_seed(self.config.seed)
        resumed_from = self.resume() if resume else 0
        if distributed.world_size() > 1:  # each rank its own noise stream (a resume restored rank 0's)
            torch.manual_seed((self.config.seed + 1) * 1_000_003 + resumed_from * 1_009 + distributed.rank())
        if self.is_writer:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        total = self.config.total_steps
        per_epoch = max(1, self.source.steps_per_epoch)
        bar = _progress(total, resumed_from, self.config.progress and self.is_writer, self.config.label)
        step_times: list[float] = []
        losses: dict[str, float] = {}
        self._started, self._hook_seconds = time.perf_counter(), 0.0
        iterator: Iterator[Batch] | None = None
        meter = PeakMemoryMeter(self.device)
        try:
            with stop_between_steps() as stop, meter:
                while self.step < total:
                    epoch, index = divmod(self.step, per_epoch)
                    if iterator is None or index == 0:
                        iterator = self.source.batches(epoch, start=index)
                    tick = time.perf_counter()
                    batch = self.prepare(next(iterator))
                    losses = {**self.d_step(batch), **self.g_step(batch)}
                    step_times.append(time.perf_counter() - tick)
                    self.step += 1
                    self._after_step(losses, epoch, bar)
                    if stop.requested:
                        saved = self.save() if self.step > resumed_from else None
                        where = f"; checkpoint {saved}" if saved is not None else ""
                        raise KeyboardInterrupt(f"{stop.requested} at step {self.step}{where}")
        finally:
            bar.close()
        if not distributed.ranks_agree(self.model):
            raise T2IGanError(
                f"step {self.step}: the processes' parameters differ; gradients were not averaged"
            )
        final = self.save(FINAL_FILE)
        self.write_samples("final")
        memory = meter.result()
        return TrainResult(
            steps=self.step,
            resumed_from=resumed_from,
            train_seconds=self.train_seconds(),
            step_seconds_median=statistics.median(step_times) if step_times else None,
            last_losses=losses,
            final_checkpoint=final,
            peak_memory_bytes=memory.peak_bytes,
            peak_memory_start_bytes=memory.start_bytes,
            peak_memory_method=memory.method,
        )

    def _after_step(self, losses: dict[str, float], epoch: int, bar: Any) -> None:
        config = self.config
        if bar is not None:
            bar.update(1)
            if self.step % max(1, config.log_every) == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k.endswith("loss")})
        if self.is_writer and (self.step % max(1, config.log_every) == 0 or self.step == config.total_steps):
            self._log({"step": self.step, "epoch": epoch, "time": time.time(), "losses": losses})
        if (
            config.checkpoint_every
            and self.step % config.checkpoint_every == 0
            and self.step < config.total_steps
        ):
            self.save()
        if config.sample_every and self.step % config.sample_every == 0:
            self.write_samples(f"step{self.step:08d}")
        if self.on_step is not None and self.is_writer:
            tick = time.perf_counter()
            self.on_step(self.step)
            self._hook_seconds += time.perf_counter() - tick

    # -------------------------------------------------------------------------------- outputs
    @property
    def log_path(self) -> Path:
        return self.out_dir / "log.jsonl"

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop log lines past the resumed step: they belong to work the checkpoint does not hold."""
        if not self.is_writer or not self.log_path.exists():
            return
        kept = [
            line
            for line in self.log_path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        write_text_atomic(self.log_path, "".join(line + "\n" for line in kept))

    def write_samples(self, tag: str) -> Path | None:
        if not self.is_writer or self.sample_text is None or self.sample_noise is None:
            return None
        from t2igan.training.samples import save_grid, stage_grid

        was_training = self.model.training
        self.model.eval()
        text = TextFeatures(
            self.sample_text.sentence.to(self.device),
            None if self.sample_text.words is None else self.sample_text.words.to(self.device),
            None if self.sample_text.mask is None else self.sample_text.mask.to(self.device),
        )
        # the same grid whenever it is drawn, SAMPLE_CHUNK images at a time and with no graph: 64 images of a
        # 256 px paper preset in one batch took 11 GB more (RAT-GAN bird256, CPU), and a GPU would need as much
        noise = self.sample_noise.to(self.device)
        parts = []
        with seeded_rng(self.config.seed, self.device), torch.no_grad():
            for start in range(0, len(noise), SAMPLE_CHUNK):
                piece = slice(start, start + SAMPLE_CHUNK)
                chunk = TextFeatures(
                    text.sentence[piece],
                    None if text.words is None else text.words[piece],
                    None if text.mask is None else text.mask[piece],
                )
                parts.append(self.model.generate_stages(noise[piece], chunk))
        stages = [torch.cat(stage) for stage in zip(*parts, strict=True)]
        self.model.train(was_training)
        path = self.out_dir / "samples" / f"{tag}.png"
        save_grid(stages[-1], path, rows=int(math.sqrt(len(stages[-1]))) or 1)
        if len(stages) > 1:  # multi-stage: every stage of the first 8 samples, coarsest on the left
            images, rows = stage_grid([stage[:8] for stage in stages])
            save_grid(images, path.with_name(f"{tag}_stages.png"), rows=rows)
        return path


SAMPLE_CHUNK = 8  # images generated at once for a sample grid


@contextlib.contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global RNG (and the CUDA device's) seeded for the block and restored after it: sampling
    and evaluation draw what they need (conditioning augmentation) without moving the training's RNG."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class _StopRequest:
    requested: str | None = None


@contextlib.contextmanager
def stop_between_steps() -> Iterator[_StopRequest]:
    """While training, the first SIGINT (Ctrl-C) or SIGTERM (a scheduler's pre-emption) asks the loop to
    stop after the current step, so that it saves a checkpoint there and no finished step is lost; a
    second SIGINT interrupts at once. Only in the main thread of a single-process run (elsewhere the
    signals keep their usual effect: ranks of a distributed job must stop together)."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread() or distributed.world_size() > 1:
        yield stop
        return

    def request(signum: int, frame: Any) -> None:
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt(f"{stop.requested}, then SIGINT again: stopped mid-step")
        stop.requested = signal.Signals(signum).name
        # a warning: the answer to the user's own signal shows even under -q
        logger.warning(
            "%s: stopping after this step and saving a checkpoint (Ctrl-C again to stop now)", stop.requested
        )

    # a signal the parent set to be ignored (SIGINT of a job started with `&` or nohup) stays ignored
    watched = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, request) for sig in watched}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress(total: int, initial: int, enabled: bool, label: str = "train") -> Any:
    return progress_bar(
        total=total, initial=initial, show=enabled, desc=label, unit="step", dynamic_ncols=True
    )
