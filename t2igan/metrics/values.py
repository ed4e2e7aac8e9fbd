"""Metric values with provenance: every number says which back-end, extractor weights, resize, sample
counts, seed, mode and protocol produced it, so numbers made differently are never put side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from t2igan.errors import T2IGanError

# What a provenance value may be. A field is one kind by declaration, so nothing downstream (the
# report, a reader of results.csv) has to guess whether `reference` is a score or a file name.
NUMBER, COUNT, TEXT, FLAG, MAPPING = "number", "count", "text", "flag", "mapping"
_KIND_CHECKS = {
    NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    COUNT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    TEXT: lambda v: isinstance(v, str),
    FLAG: lambda v: isinstance(v, bool),
    MAPPING: lambda v: isinstance(v, dict),
}


@dataclass(frozen=True)
class ProvenanceField:
    kind: str
    always: bool = False  # every value's provenance holds it (None where it does not apply)


# Every field a built-in metric writes; docs/records.md says what each means. A plugin metric may add
# fields of its own, which are kept but not read by the report.
PROVENANCE_FIELDS: dict[str, ProvenanceField] = {
    "backend": ProvenanceField(TEXT, always=True),
    "backend_version": ProvenanceField(TEXT, always=True),
    "extractor": ProvenanceField(TEXT, always=True),
    "extractor_sha256": ProvenanceField(TEXT, always=True),
    "resize": ProvenanceField(TEXT, always=True),
    "n_real": ProvenanceField(COUNT, always=True),
    "n_fake": ProvenanceField(COUNT, always=True),
    "seed": ProvenanceField(COUNT, always=True),
    "mode": ProvenanceField(TEXT, always=True),
    "protocol": ProvenanceField(TEXT, always=True),
    "quick": ProvenanceField(FLAG, always=True),
    "weights_note": ProvenanceField(TEXT, always=True),
    "stand_in": ProvenanceField(FLAG, always=True),
    "reference": ProvenanceField(NUMBER),  # what real test images score
    "chance": ProvenanceField(NUMBER),  # what an answer that ignores the text scores
    "reference_source": ProvenanceField(TEXT),  # FID: what the real statistics come from
    "reference_sha256": ProvenanceField(TEXT),  # of the statistics file given
    "reference_stats_sha256": ProvenanceField(TEXT),  # of the statistics themselves (mu, sigma)
    "reference_cached": ProvenanceField(FLAG),
    "reference_pairs": ProvenanceField(COUNT),
    "n_reference": ProvenanceField(COUNT),
    "feature": ProvenanceField(TEXT),
    "covariance_rank": ProvenanceField(MAPPING),
    "sqrtm_residual": ProvenanceField(NUMBER),
    "kid_subsets": ProvenanceField(COUNT),
    "kid_subset_size": ProvenanceField(COUNT),
    "is_splits": ProvenanceField(COUNT),
    "prc_neighborhood": ProvenanceField(COUNT),
    "probe_accuracy": ProvenanceField(MAPPING),
    "min_accuracy": ProvenanceField(NUMBER),
    "confusion": ProvenanceField(MAPPING),
    "scale": ProvenanceField(TEXT),
    "mismatch": ProvenanceField(TEXT),
    "candidates": ProvenanceField(COUNT),
    "folds": ProvenanceField(COUNT),
    "note": ProvenanceField(TEXT),
}
OWN_REFERENCE = "test split"  # `reference_source` of FID statistics computed by t2igan from the test images
PROVENANCE_KEYS = tuple(key for key, declared in PROVENANCE_FIELDS.items() if declared.always)


def check_provenance(provenance: Mapping[str, Any], metric: str = "a metric") -> None:
    """Refuse a declared field holding a value of another kind (None is always allowed)."""
    for key, value in provenance.items():
        declared = PROVENANCE_FIELDS.get(key)
        if declared is not None and value is not None and not _KIND_CHECKS[declared.kind](value):
            raise T2IGanError(
                f"provenance {key!r} of {metric}: expected a {declared.kind}, got {type(value).__name__} "
                f"{value!r}"
            )


def make_provenance(**fields: Any) -> dict[str, Any]:
    """A provenance dict with every key of PROVENANCE_KEYS (missing ones None), plus any extras given."""
    out: dict[str, Any] = {key: None for key in PROVENANCE_KEYS}
    out.update(fields)
    out["stand_in"] = bool(out.get("stand_in"))
    return out


@dataclass
class MetricValue:
    """One metric number, its spread (std over folds/subsets/splits when the metric has one) and provenance:
    what a metric returns and what a run record keeps (measured costs too, in provenance mode "cost")."""

    name: str
    value: float
    std: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        check_provenance(self.provenance, self.name)  # every value, built-in or a plugin's, on creation

    def as_dict(self) -> dict[str, Any]:
        """As a run record's JSON holds it."""
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
