"""FID in three modes that are never mixed: `standard` (torch-fidelity), `clean` (clean-fid's features and
Fréchet distance, statistics computed here), `paper` (the DF-GAN/GALIP/RATLIP computation, optionally
against their official `*_val256_FIDK0.npz`)."""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import linalg
from torch import Tensor

from t2igan.errors import ConfigError, T2IGanError, T2IGanWarning
from t2igan.metrics.context import EvalBatch, EvalContext, FeatureBank, cached_reference, extract_all
from t2igan.metrics.inception import FeatureExtractor, build_extractor, check_mode
from t2igan.metrics.stats_cache import StatsKey
from t2igan.metrics.values import OWN_REFERENCE, MetricValue, make_provenance
from t2igan.weights import sha256_file


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """mu and `np.cov(rowvar=False)` in float64 (DF-GAN code/lib/modules.py calculate_fid)."""
    array = np.asarray(features.numpy() if isinstance(features, Tensor) else features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ConfigError(f"FID needs at least 2 feature vectors of shape (N, D), got {array.shape}")
    return array.mean(axis=0), np.cov(array, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) with scipy's sqrtm; when the product is singular
    (non-finite root), eps on the diagonals: the computation of DF-GAN/GALIP code/lib/modules.py and of
    clean-fid's cleanfid/fid.py, the paper and clean modes' distance."""
    return _frechet_with_root(mu1, sigma1, mu2, sigma2, eps)[0]


def _frechet_with_root(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> tuple[float, np.ndarray, np.ndarray]:
    """`frechet_distance`, plus the product S1 S2 and scipy's root of it, so that a caller checking the
    root's accuracy does not compute the same 2048 x 2048 root a second time."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ConfigError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    product = sigma1.dot(sigma2)
    root = covmean = linalg.sqrtm(product)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise T2IGanError(
                f"Fréchet distance: sqrt(S1 S2) has an imaginary component {np.max(np.abs(covmean.imag)):.3g}"
            )
        covmean = covmean.real
    value = float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    return value, product, root


class SingularCovarianceWarning(T2IGanWarning):
    """A Fréchet distance that is approximate: too few images, or an inaccurate matrix square root."""


SQRTM_TOLERANCE = 1e-6  # relative residual of sqrt(S1 S2) above which a distance is called approximate


def statistics_sha256(mu: np.ndarray, sigma: np.ndarray) -> str:
    """One hash of reference statistics (float64 mu, then sigma), whatever file or pass they came from."""
    digest = hashlib.sha256()
    for array in (mu, sigma):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()


def covariance_rank(n_fake: int, n_real: int | None, dims: int) -> dict[str, int] | None:
    """The ranks the sample counts allow the two covariances (n vectors give at most n − 1), when either
    is below the feature dimension; None when both can be of full rank (official statistics: n_real None)."""
    fake, real = min(n_fake - 1, dims), dims if n_real is None else min(n_real - 1, dims)
    return None if fake == real == dims else {"fake": fake, "real": real, "dims": dims}


@functools.cache
def _warn_once(message: str) -> None:
    # each distance runs inside catch_warnings, which resets Python's own once-per-place memory
    warnings.warn(message, SingularCovarianceWarning, stacklevel=3)


def checked_frechet(
    metric: str,
    fake: tuple[np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray],
    n_fake: int,
    n_real: int | None,
    mode: str = "paper",
) -> tuple[float, dict[str, Any]]:
    """The Fréchet distance of two (mu, sigma) pairs as `mode` computes it (`fid_from_statistics`); says in
    provenance, and once in our words, when the number is approximate.

    scipy's sqrtm warns "Matrix is singular" whenever S1 S2 is, which tells a user nothing about the
    number: a dead feature (a ReLU unit at zero on every image) makes it singular, yet the root is still
    exact to rounding. So the root's relative residual is measured then, and the distance is called
    approximate only when that residual is large or when there are fewer images than dimensions.
    Returns the value and the provenance fields `covariance_rank` and `sqrtm_residual`."""
    computed = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        if check_mode(mode) == "standard":
            value = fid_from_statistics(mode, fake, real)
        else:
            value, *computed = _frechet_with_root(fake[0], fake[1], real[0], real[1])
    singular = False
    for w in caught:
        if issubclass(w.category, linalg.LinAlgWarning):
            singular = True
        else:  # anything else is passed on as it came
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    residual = None
    if singular:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # a root with no finite value: nan
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            if computed is None:  # torch-fidelity's computation keeps its root to itself
                product = fake[1].dot(real[1])
                computed = [product, linalg.sqrtm(product)]
            product, root = computed
            residual = float(np.linalg.norm(root.dot(root) - product) / max(np.linalg.norm(product), 1e-300))
    rank = covariance_rank(n_fake, n_real, len(fake[0]))
    if rank is not None:
        _warn_once(
            f"{metric}: fewer images than feature dimensions, so the covariances are rank-deficient and the "
            "Fréchet distance is approximate: compare it only with values at the same image counts "
            "(provenance: covariance_rank)"
        )
    if residual is not None and not residual <= SQRTM_TOLERANCE:
        _warn_once(
            f"{metric}: the square root of the covariance product is inaccurate, so the Fréchet distance is "
            "approximate (provenance: sqrtm_residual)"
        )
    return value, {"covariance_rank": rank, "sqrtm_residual": residual}


def fid_from_statistics(
    mode: str, fake: tuple[np.ndarray, np.ndarray], real: tuple[np.ndarray, np.ndarray]
) -> float:
    """The Fréchet distance as each mode's back-end computes it."""
    check_mode(mode)
    if mode == "standard":
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

        result = fid_statistics_to_metric(
            {"mu": fake[0], "sigma": fake[1]}, {"mu": real[0], "sigma": real[1]}, verbose=False
        )
        return float(result[KEY_METRIC_FID])
    # clean-fid's Fréchet distance is this same computation, but calls sqrtm with `disp`, which scipy
    # deprecates (1.16) and removes (1.18), and prints to stdout when the root is not finite
    return frechet_distance(fake[0], fake[1], real[0], real[1])


def load_reference_npz(path: str | os.PathLike, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mu and sigma of an official `*_val256_FIDK0.npz` (keys 'mu', 'sigma'; DF-GAN code/lib/utils.py load_npz)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"reference_npz {path}: no such file (expected e.g. data/birds/npz/bird_val256_FIDK0.npz)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], dtype=np.float64), np.asarray(data["sigma"], dtype=np.float64)
    except KeyError as exc:
        raise ConfigError(f"reference_npz {path}: expected arrays 'mu' and 'sigma' ({exc})") from exc
    except Exception as exc:
        raise ConfigError(
            f"reference_npz {path}: not a readable npz of arrays ({type(exc).__name__}: {exc})"
        ) from exc
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or (dims is not None and len(mu) != dims):
        raise ConfigError(
            f"reference_npz {path}: mu {mu.shape} / sigma {sigma.shape} do not form statistics of "
            f"{dims or 'D'}-d features"
        )
    return mu, sigma


# ---------------------------------------------------------------------------------------------------
# Pieces shared by every Inception-based metric of one evaluation


def shared_extractor(
    context: EvalContext, config: Mapping[str, Any], default_mode: str = "standard"
) -> FeatureExtractor:
    """The extractor `config` asks for, built once per evaluation; config `extractor` may hand in one
    built earlier (a bench reusing it across runs), whose mode must then agree with config `mode`."""
    given = config.get("extractor")
    mode = check_mode(str(config.get("mode", given.info.mode if given is not None else default_mode)))
    if given is not None:
        if given.info.mode != mode:
            raise ConfigError(f"config extractor is a {given.info.mode!r}-mode extractor, but mode={mode!r}")
        return given
    key = (
        "inception",
        mode,
        str(config.get("weights") or ""),
        str(config.get("feature") or "2048"),
        config.get("weights_note"),
        config.get("stand_in"),
    )

    def build() -> FeatureExtractor:
        return build_extractor(
            mode,
            config.get("weights"),
            context.device,
            config.get("feature"),
            config.get("weights_note"),
            config.get("stand_in"),
        )

    return context.shared_object(key, build)


def shared_bank(context: EvalContext, extractor: FeatureExtractor) -> FeatureBank:
    return context.shared_object(("bank", id(extractor)), lambda: FeatureBank(extractor.extract))


def real_reference(
    context: EvalContext, extractor: FeatureExtractor, metric: str
) -> tuple[dict[str, np.ndarray], bool]:
    """Features and statistics of the real test images, through the stats cache."""
    info = extractor.info

    def compute() -> dict[str, np.ndarray]:
        images = context.require_real_images(metric)
        out = extract_all(
            images, extractor.extract, context.batch_size, context.progress, f"real images ({info.mode})"
        )
        mu, sigma = feature_statistics(out["pool"])
        arrays = {"features": out["pool"].numpy(), "mu": mu, "sigma": sigma}
        if "logits" in out:
            arrays["logits"] = out["logits"].numpy()
        return arrays

    def cached() -> tuple[dict[str, np.ndarray], bool]:
        n_real = len(context.real_images) if context.real_images is not None else 0
        key = StatsKey(
            context.dataset,
            context.split_sha256,
            context.resolution,
            info.resize,
            info.backend,
            info.backend_version,
            info.name,
            info.sha256,
            info.feature,
            n_real,
        )
        return cached_reference(context, key, compute)

    return context.shared_object(("reference", id(extractor)), cached)


class FIDMetric:
    """FID of the generated images against the test split (or an official npz in `paper` mode).

    Config: `mode` (standard|clean|paper), `weights` (path), `feature` ("2048"; torch-fidelity and the
    official extractor also offer "64", "192", "768"), `reference_npz` (paper mode only: the official mu/sigma),
    `weights_note`, `stand_in`.
    """

    name = "fid"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        self.extractor = shared_extractor(context, self.config)
        self.bank = shared_bank(context, self.extractor)
        reference = self.config.get("reference_npz")
        if reference and self.extractor.info.mode != "paper":
            raise ConfigError(
                f"reference_npz {reference}: official statistics are of the paper-mode extractor (pytorch-fid's "
                f"Inception, the official preprocessing); FID mode {self.extractor.info.mode!r} cannot use them: "
                "use mode=paper (--fid-mode paper) with it"
            )

    def update(self, batch: EvalBatch) -> None:
        self.bank.update(batch)

    def compute(self) -> list[MetricValue]:
        fake = feature_statistics(self.bank.result()["pool"])
        info = self.extractor.info
        extra: dict[str, Any] = {}
        if self.config.get("reference_npz"):
            path = Path(self.config["reference_npz"])
            real = load_reference_npz(path, dims=len(fake[0]))
            n_real = None
            extra = {"reference_source": str(path), "reference_sha256": sha256_file(path)}
        else:
            arrays, hit = real_reference(self.context, self.extractor, self.name)
            real, n_real = (arrays["mu"], arrays["sigma"]), len(arrays["features"])
            extra = {"reference_source": OWN_REFERENCE, "reference_cached": hit}
        extra["reference_stats_sha256"] = statistics_sha256(*real)
        n_fake = len(self.bank.result()["pool"])
        value, condition = checked_frechet("fid", fake, real, n_fake, n_real, info.mode)
        provenance = make_provenance(
            **info.provenance(), n_real=n_real, n_fake=n_fake, seed=self.context.seed, **extra, **condition
        )
        return [MetricValue("fid", value, None, provenance, higher_is_better=False)]
