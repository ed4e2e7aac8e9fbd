"""The built-in metrics, registered through the same hook a plugin uses.

The evaluator's call sequence (t2igan.metrics.evaluate): `metric = spec.build(config, context)` with
`context` a `t2igan.metrics.context.EvalContext`; then `metric.update(batch)` for every generated
`EvalBatch` (images float (B, 3, H, W) in [-1, 1], captions, samples); then `metric.compute()` ->
`list[MetricValue]`, each with its provenance. A metric may return several values (precision_recall:
precision, recall, prc_f_score; probe: probe and probe_<attribute>).
"""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.metrics.clip_score import CLIPRPrecisionMetric, CLIPScoreMetric, SecondCLIPScoreMetric
from t2igan.metrics.fid import FIDMetric
from t2igan.metrics.kid_is_pr import ISMetric, KIDMetric, PrecisionRecallMetric
from t2igan.metrics.probe_metrics import ProbeFDMetric, ProbeMetric
from t2igan.metrics.r_precision import DAMSMRPrecisionMetric
from t2igan.specs import MetricSpec


def metric_specs() -> list[MetricSpec]:
    images, real = "images", "real_images"
    return [
        MetricSpec(
            "fid",
            FIDMetric,
            "Fréchet Inception distance; mode standard (torch-fidelity), clean "
            "(clean-fid) or paper (DF-GAN/GALIP torchvision Inception, official npz)",
            False,
            (images, real),
        ),
        MetricSpec(
            "kid",
            KIDMetric,
            "kernel Inception distance (torch-fidelity), mean ± std over subsets",
            False,
            (images, real),
        ),
        MetricSpec(
            "is",
            ISMetric,
            "Inception score (torch-fidelity, TF-FID Inception), mean ± std over splits",
            True,
            (images,),
        ),
        MetricSpec(
            "precision_recall",
            PrecisionRecallMetric,
            "improved precision, recall and F-score in Inception space (torch-fidelity)",
            True,
            (images, real),
        ),
        MetricSpec(
            "clip_score",
            CLIPScoreMetric,
            "mean CLIP cosine similarity of image and caption, as GALIP computes it (raw, not ×100)",
            True,
            (images, "captions", "clip"),
        ),
        MetricSpec(
            "clip_score_2",
            SecondCLIPScoreMetric,
            "the CLIP score under a second CLIP given by --second-clip MODEL=WEIGHTS (config model, "
            "pretrained), a column that no model optimised while training",
            True,
            (images, "captions"),
        ),
        MetricSpec(
            "clip_r_precision",
            CLIPRPrecisionMetric,
            "R-precision (1 true caption among 100) with CLIP embeddings, mean ± std over 10 folds",
            True,
            (images, "captions", "clip"),
        ),
        MetricSpec(
            "r_precision",
            DAMSMRPrecisionMetric,
            "AttnGAN/DM-GAN R-precision with the DAMSM encoders, mean ± std over 10 folds",
            True,
            (images, "captions", "damsm"),
        ),
        MetricSpec(
            "probe",
            ProbeMetric,
            "shapes probe: attribute accuracy of generated images against their "
            "captions' attributes (all-correct and per attribute)",
            True,
            (images, "captions", "probe", real),
        ),
        MetricSpec(
            "probe_fd",
            ProbeFDMetric,
            "Fréchet distance in the shapes probe's penultimate feature space",
            False,
            (images, "probe", real),
        ),
    ]


@hookimpl
def t2igan_register_metrics(register):
    for spec in metric_specs():
        register(spec)
