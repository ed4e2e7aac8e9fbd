"""Run records: one `record.json` per (plan, dataset, model, seed), written atomically; the schema
everything downstream (report, plots, merging of cluster runs) reads."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2igan.atomic import write_json_atomic
from t2igan.errors import T2IGanError
from t2igan.metrics.values import MetricValue

SCHEMA_VERSION = 2  # 2: FID's text `reference` became `reference_source` (`reference` is a number)
STATUS_FINISHED, STATUS_FAILED, STATUS_RUNNING = "finished", "failed", "running"

COST_MODE = "cost"  # provenance mode of the measured costs (parameters, times): columns after the metrics


@dataclass
class RunRecord:
    plan: str
    dataset: str
    model: str  # the variant label, e.g. "dfgan:fusion=rat": the row name in tables
    seed: int
    status: str = STATUS_RUNNING
    error: str | None = None
    model_name: str = ""
    preset: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)  # {"name", "sha256", "count"}
    protocol: dict[str, Any] = field(default_factory=dict)  # {"name", "images_per_caption", ...}
    budget: dict[str, Any] = field(default_factory=dict)  # {"name", "steps", "epochs", "batch_size"}
    text_encoder: dict[str, Any] = field(default_factory=dict)  # {"name", "weights_sha256", "stand_in", ...}
    environment: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, Any] = field(default_factory=dict)
    metrics: list[MetricValue] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # [{"step", "metric", "value"}]
    paper_results: list[dict[str, Any]] = field(default_factory=list)
    optimises: list[str] = field(default_factory=list)  # metrics the model's loss optimises (its spec)
    checkpoint: dict[str, Any] = field(default_factory=dict)  # `t2igan eval --record`: the file scored
    started: float | None = None
    finished: float | None = None
    schema_version: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "record") -> RunRecord:
        version = data.get("schema_version")
        if version == 1:
            data = _from_version_1(data)
        elif version != SCHEMA_VERSION:
            raise T2IGanError(
                f"{source}: schema_version {version!r}, this t2igan reads 1 and {SCHEMA_VERSION}"
            )
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["metrics"] = [MetricValue(**m) for m in data.get("metrics", [])]
            return cls(**values)
        except (TypeError, T2IGanError) as exc:  # T2IGanError: a provenance field of the wrong kind
            raise T2IGanError(f"{source}: malformed run record ({exc})") from exc


def _from_version_1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 record in version 2: FID kept what its statistics came from in `reference`."""
    metrics = []
    for metric in data.get("metrics", []):
        provenance = dict(metric.get("provenance") or {})
        if metric.get("name") == "fid" and isinstance(provenance.get("reference"), str):
            provenance["reference_source"] = provenance.pop("reference")
        metrics.append({**metric, "provenance": provenance})
    return {**data, "metrics": metrics, "schema_version": SCHEMA_VERSION}


PROTOCOL_KEYS = (
    "images_per_caption",
    "sample_times",
    "batch_size",
    "drop_last",
    "max_images",
    "seed",
    "source",
)


def protocol_entry(protocol: Any) -> dict[str, Any]:
    """A record's `protocol`: the name and every setting that changes which images are scored."""
    return {"name": protocol.name, **{k: getattr(protocol, k) for k in PROTOCOL_KEYS}}


def dataset_dir(out: str | os.PathLike, dataset: str) -> Path:
    """runs/<plan>/<dataset>: every run of one dataset label."""
    return Path(out) / _safe(dataset)


def run_dir(out: str | os.PathLike, dataset: str, model_label: str, seed: int) -> Path:
    """runs/<plan>/<dataset>/<model>/seed<k>: the variant label made safe as a folder name."""
    return dataset_dir(out, dataset) / _safe(model_label) / f"seed{seed}"


def _safe(label: str) -> str:
    """A label (`dfgan:fusion=rat`, `shapes:size=tiny`) as a portable folder name."""
    return "".join(ch if ch.isalnum() or ch in "._-=" else "_" for ch in label)


def write_record(folder: str | os.PathLike, record: RunRecord) -> Path:
    return write_json_atomic(Path(folder) / "record.json", record.as_dict())


def read_record(path: str | os.PathLike) -> RunRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise T2IGanError(f"{path}: cannot read run record ({exc})") from exc
    return RunRecord.from_dict(data, source=str(path))


def iter_records(root: str | os.PathLike) -> Iterator[tuple[Path, RunRecord]]:
    """Every record.json under `root` (several plans' folders on a shared filesystem merge here)."""
    for path in sorted(Path(root).rglob("record.json")):
        yield path, read_record(path)


def environment(device: Any = None) -> dict[str, Any]:
    """Where and with what a run was made; `git_sha` is None outside a git checkout (an exported tree), and
    `git_dirty` says whether the checkout had uncommitted changes."""
    import torch

    import t2igan

    sha, dirty = _git_state()
    return {
        "device": None if device is None else str(device),
        "t2igan": t2igan.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_sha": sha,
        "git_dirty": dirty,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_state(here: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit and dirtiness of the checkout t2igan runs from (`here`: the folder above the package);
    None when that folder is not the top of a checkout (an installed copy inside some other repository,
    e.g. a virtual environment kept in a project's git tree)."""
    here = (here or Path(__file__).resolve().parents[2]).resolve()

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "--show-toplevel", "HEAD")
        lines = head.stdout.splitlines()  # the top-level folder may contain spaces
        if head.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != here:
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return lines[1], (bool(status.stdout.strip()) if status.returncode == 0 else None)


def split_identity(test_sha256: object, train_sha256: object = None) -> str:
    """What makes two runs' data the same: the test split's sha256, and the train split's when recorded
    (runs trained on other data differ). Tables and plots average only runs with one identity."""
    train = f"+{train_sha256}" if isinstance(train_sha256, str) and train_sha256 else ""
    return f"{test_sha256}{train}"
