"""KID, Inception Score and precision/recall through torch-fidelity's own functions, on the Inception
features the FID of the same evaluation uses (`standard` mode: torch-fidelity's extractor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalBatch, EvalContext
from t2igan.metrics.fid import real_reference, shared_bank, shared_extractor
from t2igan.metrics.values import MetricValue, make_provenance

# torch_fidelity/defaults.py (0.4.0): kid_subsets 100, kid_subset_size 1000, isc_splits 10, prc_neighborhood 3
KID_SUBSETS, KID_SUBSET_SIZE, IS_SPLITS, PRC_NEIGHBORHOOD = 100, 1000, 10, 3
# Rows of one block of k-NN distances: the distances held at once are PRC_BLOCK x N float32 (N the larger
# side), 120 MB at 30,000 images, instead of torch-fidelity's full N x N matrices (3.6 GB each at 30,000).
PRC_BLOCK = 1000


def precision_recall(
    fake: torch.Tensor, real: torch.Tensor, neighborhood: int = PRC_NEIGHBORHOOD, block: int = PRC_BLOCK
) -> dict[str, float]:
    """Improved precision and recall (k-NN balls) and their F-score by torch-fidelity's function, the
    distances computed a block of rows at a time (its `save_cpu_ram` path): the same numbers as its full
    matrices, in bounded memory. torch-fidelity's convention: features_1 generated, features_2 real."""
    from torch_fidelity.metric_prc import (
        KEY_METRIC_F_SCORE,
        KEY_METRIC_PRECISION,
        KEY_METRIC_RECALL,
        prc_features_to_metric,
    )

    out = prc_features_to_metric(
        fake.float(),
        real.float(),
        prc_neighborhood=neighborhood,
        prc_batch_size=block,
        save_cpu_ram=True,
        verbose=False,
    )
    return {
        "precision": float(out[KEY_METRIC_PRECISION]),
        "recall": float(out[KEY_METRIC_RECALL]),
        "prc_f_score": float(out[KEY_METRIC_F_SCORE]),
    }


class _FidelityMetric:
    """Common part: the shared standard-mode extractor and feature bank, and the seed."""

    name = ""

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        given = self.config.get("extractor")
        mode = str(self.config.get("mode", given.info.mode if given is not None else "standard"))
        if mode != "standard":
            raise ConfigError(
                f"metric {self.name!r} exists in mode 'standard' (torch-fidelity) only, got mode={mode!r}"
            )
        self.extractor = shared_extractor(context, self.config)
        self.bank = shared_bank(context, self.extractor)
        self.seed = int(self.config.get("seed", context.seed))

    def update(self, batch: EvalBatch) -> None:
        self.bank.update(batch)

    def provenance(self, n_real: int | None, n_fake: int, **extra: Any) -> dict[str, Any]:
        return make_provenance(
            **self.extractor.info.provenance(), n_real=n_real, n_fake=n_fake, seed=self.seed, **extra
        )

    def real_features(self) -> torch.Tensor:
        arrays, _ = real_reference(self.context, self.extractor, self.name)
        return torch.from_numpy(arrays["features"])


class KIDMetric(_FidelityMetric):
    """Kernel Inception Distance (polynomial kernel, unbiased MMD over random subsets; mean ± std)."""

    name = "kid"

    def compute(self) -> list[MetricValue]:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

        fake, real = self.bank.result()["pool"], self.real_features()
        subset_size = min(int(self.config.get("subset_size", KID_SUBSET_SIZE)), len(fake), len(real))
        subsets = int(self.config.get("subsets", KID_SUBSETS))
        out = kid_features_to_metric(
            fake.float(),
            real.float(),
            kid_subsets=subsets,
            kid_subset_size=subset_size,
            rng_seed=self.seed,
            verbose=False,
        )
        provenance = self.provenance(len(real), len(fake), kid_subsets=subsets, kid_subset_size=subset_size)
        return [
            MetricValue(
                "kid",
                float(out[KEY_METRIC_KID_MEAN]),
                float(out[KEY_METRIC_KID_STD]),
                provenance,
                higher_is_better=False,
            )
        ]


class ISMetric(_FidelityMetric):
    """Inception Score of the generated images over `splits` (torch-fidelity: unbiased logits, shuffled)."""

    name = "is"

    def compute(self) -> list[MetricValue]:
        from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

        features = self.bank.result()
        if "logits" not in features:
            raise ConfigError("metric 'is' needs the Inception logits: use feature '2048' (the default)")
        splits = int(self.config.get("splits", IS_SPLITS))
        if len(features["logits"]) < splits:
            raise ConfigError(f"metric 'is': {len(features['logits'])} images cannot form {splits} splits")
        out = isc_features_to_metric(features["logits"], splits=splits, shuffle=True, rng_seed=self.seed)
        provenance = self.provenance(
            None,
            len(features["logits"]),
            is_splits=splits,
            note="TF-FID Inception (ImageNet); not the CUB/flowers fine-tuned IS model",
        )
        return [
            MetricValue(
                "is",
                float(out[KEY_METRIC_ISC_MEAN]),
                float(out[KEY_METRIC_ISC_STD]),
                provenance,
                higher_is_better=True,
            )
        ]


class PrecisionRecallMetric(_FidelityMetric):
    """Improved precision and recall (k-NN balls) and their F-score, computed by torch-fidelity's function on
    the Inception features this evaluation already has; torch-fidelity's `calculate_metrics` would default to
    VGG16 fc2_relu features for PR, so these numbers are labelled with their feature space."""

    name = "precision_recall"

    def compute(self) -> list[MetricValue]:
        fake, real = self.bank.result()["pool"], self.real_features()
        neighborhood = int(self.config.get("neighborhood", PRC_NEIGHBORHOOD))
        if min(len(fake), len(real)) <= neighborhood:
            raise ConfigError(f"precision_recall needs more than {neighborhood} real and generated images")
        scores = precision_recall(fake, real, neighborhood)
        provenance = self.provenance(
            len(real),
            len(fake),
            prc_neighborhood=neighborhood,
            note="Inception pool features (torch-fidelity's own default for PR is VGG16 fc2_relu)",
        )
        return [
            MetricValue(name, value, None, dict(provenance), higher_is_better=True)
            for name, value in scores.items()
        ]
