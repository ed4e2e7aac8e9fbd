"""Metric values with provenance: every number says which back-end, extractor weights, resize, sample
counts, seed, mode and protocol produced it, so numbers made differently are never put side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from t2igan.errors import T2IGanError

# The keys every value's provenance has (None when not applicable); the report reads these columns.
PROVENANCE_KEYS = (
    "backend",
    "backend_version",
    "extractor",
    "extractor_sha256",
    "resize",
    "n_real",
    "n_fake",
    "seed",
    "mode",
    "protocol",
    "quick",
    "weights_note",
    "stand_in",
)


def make_provenance(**fields: Any) -> dict[str, Any]:
    """A provenance dict with every key of PROVENANCE_KEYS (missing ones None), plus any extras given."""
    out: dict[str, Any] = {key: None for key in PROVENANCE_KEYS}
    out.update(fields)
    out["stand_in"] = bool(out.get("stand_in"))
    return out


@dataclass
class MetricValue:
    """One metric number, its spread (std over folds/subsets/splits when the metric has one) and provenance."""

    name: str
    value: float
    std: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields of `t2igan.bench.records.MetricRecord`, ready for a run record."""
        return asdict(self)

    @property
    def mode(self) -> str | None:
        return self.provenance.get("mode")


def label_protocol(values: Iterable[MetricValue], protocol: str, quick: bool) -> list[MetricValue]:
    """Stamp the protocol name (and whether it is a `quick` one) into every value's provenance."""
    out = list(values)
    for value in out:
        value.provenance["protocol"] = protocol
        value.provenance["quick"] = bool(quick)
    return out


def check_single_mode(values: Iterable[MetricValue]) -> None:
    """Refuse a set of values where one metric name was computed in more than one mode.

    FID in `paper`, `standard` and `clean` modes differ by design; one table holds one mode per metric.
    """
    modes: dict[str, set[str]] = {}
    for value in values:
        modes.setdefault(value.name, set()).add(str(value.mode))
    mixed = {name: sorted(found) for name, found in modes.items() if len(found) > 1}
    if mixed:
        detail = "; ".join(f"{name}: {', '.join(found)}" for name, found in sorted(mixed.items()))
        raise T2IGanError(f"metric values mix modes in one table ({detail}); choose one mode per metric")


def weights_provenance(source: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`weights_note` and `stand_in` of an encoder object (its attributes), overridden by config keys."""
    config = config or {}
    note = config.get("weights_note", getattr(source, "weights_note", "") or "")
    stand_in = config.get("stand_in", getattr(source, "stand_in", False))
    return {"weights_note": note, "stand_in": bool(stand_in)}
