"""Metrics with provenance: FID/KID/IS/PR (torch-fidelity, clean-fid, paper mode), CLIP score and
R-precision, the shapes probe metrics, reference-stat caches, and the protocol driver."""

from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.evaluate import EvalResult, evaluate, evaluate_folder, select_samples
from t2igan.metrics.values import MetricValue, make_provenance

__all__ = [
    "EvalBatch",
    "EvalContext",
    "EvalResult",
    "EvalSample",
    "MetricValue",
    "evaluate",
    "evaluate_folder",
    "make_provenance",
    "select_samples",
]
