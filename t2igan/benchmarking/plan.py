"""Benchmark plans: models × datasets × seeds under one budget and one evaluation protocol, from
flags or a TOML file; the resolved plan is written beside the results."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2igan.benchmarking.budgets import BUDGET_STEPS, BUDGETS
from t2igan.errors import ConfigError
from t2igan.models import ModelRef, parse_model_list

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TEXT, INTEGER, NAMES, TABLE = "text", "integer", "names", "table"
# The plan's schema: each field's kind, checked before anything else reads it, so that a plan file whose
# value has the wrong type fails on one line naming it. `names`: text ("a,b") or a list of texts (seeds
# also a list of integers); `table`: a TOML table (or, for roots and fid_reference, NAME=VALUE texts).
PLAN_SCHEMA: dict[str, str] = {
    "name": TEXT,
    "models": NAMES,
    "data": NAMES,
    "seeds": NAMES,
    "budget": TEXT,
    "steps": INTEGER,
    "epochs": INTEGER,
    "batch_size": INTEGER,
    "protocol": TEXT,
    "eval_images": INTEGER,
    "fid_mode": TEXT,
    "inception_weights": TEXT,
    "fid_reference": TABLE,
    "second_clip": TEXT,
    "roots": TABLE,
    "device": TEXT,
    "eval_seed": INTEGER,
    "out": TEXT,
    "encoders": TABLE,
    "probe": TABLE,
    "checkpoint_every": INTEGER,
    "keep_last": INTEGER,
    "eval_every": INTEGER,
    "eval_every_images": INTEGER,
}
PLAN_FIELDS = tuple(PLAN_SCHEMA)
_EXPECTED = {
    TEXT: "text",
    INTEGER: "an integer",
    NAMES: 'a comma-separated text or a list, e.g. "dfgan,galip" or ["dfgan", "galip"]',
    TABLE: "a table",
}


def _check_kinds(fields: Mapping[str, Any], source: str) -> None:
    """Every given field of the kind its schema entry says (None: not given)."""
    for key, value in fields.items():
        kind = PLAN_SCHEMA[key]
        if value is None:
            continue
        if kind == TEXT:  # paths may be PathLike; a device may be a torch.device (from Python)
            ok = isinstance(value, (str, os.PathLike)) or (key == "device" and hasattr(value, "type"))
        elif kind == INTEGER:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == NAMES:
            ok = (
                isinstance(value, str)
                or (
                    isinstance(value, (list, tuple))
                    and all(
                        isinstance(v, str)
                        or (key == "seeds" and isinstance(v, int) and not isinstance(v, bool))
                        for v in value
                    )
                )
                or (key == "seeds" and isinstance(value, int) and not isinstance(value, bool))
            )
        else:
            listed = key in ("roots", "fid_reference") and isinstance(value, (list, tuple))
            ok = isinstance(value, Mapping) or (listed and all(isinstance(v, str) for v in value))
        if not ok:
            raise ConfigError(f"{source}: {key} = {value!r}: expected {_EXPECTED[kind]}")


@dataclass(frozen=True)
class Budget:
    name: str  # smoke | short | paper | steps | epochs
    steps: int | None = None
    epochs: int | None = None

    def describe(self) -> str:
        if self.steps is not None:
            return f"{self.name} ({self.steps} steps)"
        if self.epochs is not None:
            return f"{self.name} ({self.epochs} epochs)"
        return f"{self.name} (each preset's max_epoch)"


@dataclass(frozen=True)
class RunKey:
    dataset: str
    model: ModelRef
    seed: int

    @property
    def label(self) -> str:
        return f"{self.dataset} / {self.model.variant} / seed {self.seed}"


@dataclass
class BenchPlan:
    name: str
    models: list[ModelRef]
    datasets: list[str]
    seeds: list[int]
    budget: Budget
    protocol: str = "paper"
    batch_size: int | None = None  # every run's training batch; None: each preset's own
    eval_images: int | None = None  # score only the first N images the protocol selects (labelled quick)
    fid_mode: str = "standard"
    inception_weights: str | None = None  # a local file of fid_mode's Inception (as --inception-weights)
    fid_reference: dict[str, str] = field(
        default_factory=dict
    )  # dataset -> official *_FIDK0.npz (paper mode)
    second_clip: str | None = None  # `MODEL=WEIGHTS`: the CLIP score under a second CLIP (`clip_score_2`)
    roots: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    eval_seed: int = 100
    out: Path = Path("runs")
    # per text encoder: its weights (`weights = "path"`) or, on shapes, its pre-training config
    encoders: dict[str, dict[str, Any]] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)  # the shapes probe's config (and `count`)
    checkpoint_every: int | None = None  # default: about five checkpoints per run
    keep_last: int | None = None  # step checkpoints kept besides final.pt (default: the Trainer's, 2)
    eval_every: int | None = None  # evaluate during training every N steps (metric-vs-step curves)
    eval_every_images: int = 200  # ... on this many test captions (labelled quick)

    def runs(self) -> list[RunKey]:
        """Dataset-major order: every model of a dataset shares its split, encoders and probe."""
        return [RunKey(d, m, s) for d in self.datasets for m in self.models for s in self.seeds]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = [m.label for m in self.models]
        data["budget"] = asdict(self.budget)
        data["out"] = str(self.out)
        return data


def _split_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    items = [str(v).strip() for v in items if str(v).strip()]
    if not items:
        raise ConfigError(f"{what} is empty")
    return items


def _seeds(value: Any) -> list[int]:
    try:
        return [int(v) for v in _split_list(value if value is not None else "0", "--seeds")]
    except ValueError as exc:
        raise ConfigError(f"--seeds {value!r}: expected comma-separated integers, e.g. 0,1,2") from exc


def _budget(fields: Mapping[str, Any]) -> Budget:
    chosen = [k for k in ("budget", "steps", "epochs") if fields.get(k) is not None]
    if len(chosen) > 1:
        raise ConfigError(f"give one of budget, steps, epochs (got {', '.join(chosen)})")
    if fields.get("steps") is not None:
        return Budget("steps", steps=_positive(fields["steps"], "--steps"))
    if fields.get("epochs") is not None:
        return Budget("epochs", epochs=_positive(fields["epochs"], "--epochs"))
    name = fields.get("budget") or "smoke"
    if name not in BUDGETS:
        raise ConfigError(f"--budget {name!r}: expected one of {', '.join(BUDGETS)}")
    return Budget(name, steps=BUDGET_STEPS.get(name))


def _positive(value: Any, flag: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{flag} {value!r}: expected a positive integer") from exc
    if number <= 0:
        raise ConfigError(f"{flag} {value!r}: expected a positive integer")
    return number


def _optional_positive(value: Any, key: str) -> int | None:
    """A plan field that is a positive integer when given (named as its flag, `--batch-size`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"--{key.replace('_', '-')} {value!r}: expected a positive integer")
    return _positive(value, f"--{key.replace('_', '-')}")


def _roots(value: Any, flag: str = "--root") -> dict[str, str]:
    """DATASET=PATH pairs, from a TOML table or from repeated flags."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    roots: dict[str, str] = {}
    for item in value:
        name, eq, path = str(item).partition("=")
        if not eq or not name or not path:
            raise ConfigError(f"{flag} {item!r}: expected DATASET=PATH, e.g. cub=/data/birds")
        roots[name.strip()] = path.strip()
    return roots


def fid_references(value: Any, fid_mode: str, source: str = "flags") -> dict[str, str]:
    """`fid_reference` (a table, or DATASET=NPZ items): official statistics, valid for `paper` FID only."""
    references = _roots(value, "fid_reference")
    if references and fid_mode != "paper":
        raise ConfigError(
            f"{source}: fid_reference gives official reference statistics, which only fid_mode 'paper' "
            f"computes comparable features for; fid_mode is {fid_mode!r}"
        )
    return references


def make_plan(fields: Mapping[str, Any], source: str = "flags") -> BenchPlan:
    """A plan from flag values or a TOML table; defaults give the embedded `shapes` smoke benchmark."""
    unknown = sorted(set(fields) - set(PLAN_FIELDS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown plan field(s) {', '.join(unknown)}; known: {', '.join(PLAN_FIELDS)}"
        )
    _check_kinds(fields, source)
    models_text = fields.get("models")
    if models_text is not None and not (models_text.strip() if isinstance(models_text, str) else models_text):
        raise ConfigError(
            f"{source}: models is empty: give at least one model name (see `t2igan models`), or leave it out "
            "for every registered model"
        )
    models_text = models_text or "all"
    if isinstance(models_text, list):
        models_text = ",".join(models_text)
    datasets = _split_list(fields.get("data") or "shapes", "--data")
    budget = _budget(fields)
    protocol = fields.get("protocol") or "paper"
    if protocol not in ("paper", "quick"):
        raise ConfigError(f"{source}: protocol {protocol!r}: expected 'paper' or 'quick'")
    fid_mode = fields.get("fid_mode") or "standard"
    if fid_mode not in ("standard", "clean", "paper"):
        raise ConfigError(f"{source}: fid_mode {fid_mode!r}: expected standard, clean or paper")
    name = fields.get("name") or f"{'-'.join(datasets)}-{budget.name}"
    fid_reference = fid_references(fields.get("fid_reference"), fid_mode, source)
    models = [] if models_text == "all" else parse_model_list(models_text)
    rows: dict[str, str] = {}
    for ref in models:  # a row (and a run folder) is named by the variant: the preset follows the dataset
        if ref.variant in rows:
            raise ConfigError(
                f"{source}: models {rows[ref.variant]!r} and {ref.label!r} would be one row and one run "
                f"folder ({ref.variant!r}: a bench picks the preset by dataset and budget); give it once"
            )
        rows[ref.variant] = ref.label
    return BenchPlan(
        name=name,
        models=models,
        datasets=datasets,
        seeds=_seeds(fields.get("seeds")),
        budget=budget,
        protocol=protocol,
        batch_size=_optional_positive(fields.get("batch_size"), "batch_size"),
        eval_images=_optional_positive(fields.get("eval_images"), "eval_images"),
        fid_mode=fid_mode,
        inception_weights=None if not fields.get("inception_weights") else str(fields["inception_weights"]),
        fid_reference=fid_reference,
        second_clip=_second_clip(fields.get("second_clip"), source),
        roots=_roots(fields.get("roots")),
        device=fields.get("device"),
        eval_seed=int(fields.get("eval_seed", 100)),
        out=Path(fields.get("out") or Path("runs") / name),
        encoders=_tables(fields.get("encoders"), "encoders", nested=True),
        probe=_tables(fields.get("probe"), "probe"),
        checkpoint_every=None
        if fields.get("checkpoint_every") is None
        else _positive(fields["checkpoint_every"], "checkpoint_every"),
        keep_last=None if fields.get("keep_last") is None else _positive(fields["keep_last"], "keep_last"),
        eval_every=None
        if fields.get("eval_every") is None
        else _positive(fields["eval_every"], "eval_every"),
        eval_every_images=_positive(fields.get("eval_every_images", 200), "eval_every_images"),
    )


def _second_clip(value: Any, source: str) -> str | None:
    """`MODEL` or `MODEL=WEIGHTS`, checked here so that a typo fails before anything trains."""
    if value in (None, ""):
        return None
    from t2igan.metrics.clip_score import parse_second_clip

    settings = parse_second_clip(str(value), f"{source}: second_clip")
    return f"{settings['model']}={settings['pretrained']}"


def _tables(value: Any, what: str, nested: bool = False) -> dict[str, Any]:
    """A TOML table (for `encoders`, one table per encoder name)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or (nested and not all(isinstance(v, Mapping) for v in value.values())):
        shape = "a table of tables, e.g. [encoders.damsm] epochs = 2" if nested else "a table"
        raise ConfigError(f"plan field {what!r}: expected {shape}")
    return {str(k): dict(v) if nested else v for k, v in value.items()}


def load_plan_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> BenchPlan:
    """Read a TOML plan; flags given on the command line override its fields."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"plan file {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"plan file {path}: is a folder, expected a .toml file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"plan file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"plan file {path}: cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"plan file {path}: not valid TOML ({exc})") from exc
    data.setdefault("name", path.stem)
    given = {k: v for k, v in (overrides or {}).items() if v not in (None, []) and (v != "" or k == "models")}
    if any(k in given for k in ("budget", "steps", "epochs")):
        for key in ("budget", "steps", "epochs"):  # a budget flag replaces the file's budget
            data.pop(key, None)
    return make_plan({**data, **given}, source=f"plan file {path}")
