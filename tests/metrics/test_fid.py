"""FID in its three modes against independent computations: torch-fidelity's own call, clean-fid's own
feature path, a re-implementation of the DF-GAN/GALIP pipeline, and a numpy Fréchet distance. All weights
here are random, made by the tests (conftest.py), in the real key layouts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torchvision.utils import save_image

from t2igan.errors import ConfigError, WeightsNotFoundError
from t2igan.metrics import inception
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.fid import (
    FIDMetric,
    SingularCovarianceWarning,
    checked_frechet,
    feature_statistics,
    fid_from_statistics,
    frechet_distance,
    real_reference,
)
from t2igan.metrics.inception import build_extractor
from t2igan.metrics.stats_cache import StatsCache

from .conftest import RANDOM_NOTE, direct_frechet, fake_images, real_images


def _feed(metric, images: torch.Tensor, batch_size: int = 4) -> None:
    for index, start in enumerate(range(0, len(images), batch_size)):
        chunk = images[start : start + batch_size]
        samples = [EvalSample(i, 0, 0) for i in range(start, start + len(chunk))]
        metric.update(EvalBatch(index, chunk, [""] * len(chunk), samples))


def _context(tmp_path, count: int = 12) -> EvalContext:
    return EvalContext(
        dataset="toy",
        split_sha256="abc",
        resolution=32,
        real_images=real_images(count),
        stats_cache=StatsCache(tmp_path / "cache"),
        batch_size=6,
    )


def test_frechet_distance_of_every_mode_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 12)), rng.normal(0.3, 1.2, size=(50, 12)) @ rng.normal(size=(12, 12)) * 0.5
    expected = direct_frechet(a, b)
    stats_a, stats_b = feature_statistics(a), feature_statistics(b)
    assert expected > 1.0
    for mode in ("standard", "clean", "paper"):
        assert fid_from_statistics(mode, stats_a, stats_b) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert frechet_distance(*stats_a, *stats_a) == pytest.approx(0.0, abs=1e-6)


def test_the_clean_mode_distance_is_clean_fids_own_bit_for_bit():
    from cleanfid.fid import frechet_distance as cleanfid_frechet  # needs scipy < 1.18 (its sqrtm `disp`)

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(80, 16)), rng.normal(0.2, 1.1, size=(70, 16))
    stats_a, stats_b = feature_statistics(a), feature_statistics(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = float(cleanfid_frechet(*stats_a, *stats_b))
    assert fid_from_statistics("clean", stats_a, stats_b) == theirs


def _checked(metric, a, b, n_real="same"):
    """checked_frechet on two feature sets, with every warning it gives."""
    from t2igan.metrics import fid

    fid._warn_once.cache_clear()  # once per process: each case here starts afresh
    stats_a, stats_b = feature_statistics(a), feature_statistics(b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, condition = checked_frechet(
            metric, stats_a, stats_b, len(a), len(b) if n_real == "same" else n_real
        )
    return value, condition, caught


def test_an_approximate_frechet_distance_is_said_once_in_our_words_and_recorded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 12)), rng.normal(size=(50, 12))
    value, condition, caught = _checked("probe_fd", a, b)
    assert not caught and condition == {"covariance_rank": None, "sqrtm_residual": None}
    assert value == pytest.approx(frechet_distance(*feature_statistics(a), *feature_statistics(b)))
    assert _checked("fid", a, b, n_real=None)[1]["covariance_rank"] is None  # official statistics: full rank
    # 8 and 10 vectors in 12 dimensions: covariances of rank 7 and 9
    _, condition, caught = _checked("probe_fd", a[:8], b[:10])
    assert [w.category for w in caught] == [SingularCovarianceWarning]  # scipy's LinAlgWarning stays inside
    assert "probe_fd: fewer images than feature dimensions" in str(caught[0].message)
    assert condition["covariance_rank"] == {"fake": 7, "real": 9, "dims": 12}
    # a dead feature (a ReLU unit at zero on every image) makes the product singular, but the root is
    # exact to rounding: recorded, not warned about
    dead_a, dead_b = np.maximum(a, 0), np.maximum(b, 0)
    dead_a[:, 3] = dead_b[:, 3] = 0.0
    value, condition, caught = _checked("probe_fd", dead_a, dead_b)
    assert not caught and condition["covariance_rank"] is None
    assert condition["sqrtm_residual"] is not None and condition["sqrtm_residual"] < 1e-9
    assert value == pytest.approx(direct_frechet(dead_a, dead_b), rel=1e-7)


def test_an_inaccurate_square_root_is_warned_about():
    from t2igan.metrics import fid

    fid._warn_once.cache_clear()
    # not a covariance: a product with no square root, the way a broken statistics file could give one
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, condition = checked_frechet("fid", (np.zeros(2), nilpotent), (np.zeros(2), np.eye(2)), 10, 10)
    assert [w.category for w in caught] == [SingularCovarianceWarning]
    assert "square root of the covariance product is inaccurate" in str(caught[0].message)
    assert not condition["sqrtm_residual"] <= 1e-6  # large, or not a number


def test_standard_features_equal_torch_fidelity_on_saved_pngs(fidelity_weights, tmp_path):
    """Our path (float [-1, 1] tensors) and torch-fidelity's own extractor on PNGs written by save_image."""
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.utils import create_feature_extractor

    images = fake_images(2)
    for i, image in enumerate(images):
        save_image(image, tmp_path / f"{i}.png", normalize=True, value_range=(-1, 1))
    ours = build_extractor("standard", fidelity_weights, feature="2048").extract(images)
    theirs_model = create_feature_extractor(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        cuda=False,
        feature_extractor_weights_path=str(fidelity_weights),
    )
    dataset = ImagesPathDataset([str(tmp_path / f"{i}.png") for i in range(2)])
    with torch.no_grad():
        theirs = theirs_model(torch.stack([dataset[i] for i in range(2)]))
    assert ours["pool"].shape == (2, 2048)
    assert ours["pool"].std() > 1e-3  # random weights still give informative features
    assert torch.equal(ours["pool"], theirs[0])
    assert torch.equal(ours["logits"], theirs[1])


def test_standard_fid_equals_torch_fidelity_calculate_metrics_and_numpy(
    fidelity_weights, standard64, tmp_path
):
    import torch_fidelity

    fake, real = fake_images(8), real_images(8)
    (tmp_path / "fake").mkdir()
    (tmp_path / "real").mkdir()
    for i, image in enumerate(fake):
        save_image(image, tmp_path / "fake" / f"{i:03d}.png", normalize=True, value_range=(-1, 1))
    from PIL import Image

    for i, image in enumerate(real):
        Image.fromarray(image).save(tmp_path / "real" / f"{i:03d}.png")
    reference = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "fake"),
        input2=str(tmp_path / "real"),
        fid=True,
        feature_layer_fid="64",
        feature_extractor_weights_path=str(fidelity_weights),
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )["frechet_inception_distance"]

    context = _context(tmp_path, 8)
    metric = FIDMetric({"mode": "standard", "weights": str(fidelity_weights), "feature": "64"}, context)
    _feed(metric, fake)
    [value] = metric.compute()
    real_arrays, _ = real_reference(context, metric.extractor, "fid")
    direct = direct_frechet(metric.bank.result()["pool"].numpy(), real_arrays["features"])
    assert value.value > 0.1
    assert value.value == pytest.approx(reference, abs=1e-3)
    assert value.value == pytest.approx(direct, abs=1e-3)
    prov = value.provenance
    assert prov["backend"] == "torch-fidelity" and prov["backend_version"] == torch_fidelity.__version__
    assert prov["n_real"] == 8 and prov["n_fake"] == 8 and prov["mode"] == "standard"
    assert prov["stand_in"] is True and "not the official torch-fidelity weights" in prov["weights_note"]
    assert prov["extractor_sha256"] == inception.sha256_file(fidelity_weights)


def test_reference_statistics_are_cached_under_a_full_key(standard64, tmp_path):
    config = {"extractor": standard64}
    first = FIDMetric(config, _context(tmp_path, 8))
    _feed(first, fake_images(6))
    [a] = first.compute()
    assert a.provenance["reference_cached"] is False and a.provenance["n_real"] == 8
    files = list((tmp_path / "cache" / "metrics" / "stats").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    second = FIDMetric(config, _context(tmp_path, 8))
    _feed(second, fake_images(6))
    [b] = second.compute()
    assert b.provenance["reference_cached"] is True and b.value == pytest.approx(a.value, abs=1e-9)
    other_split = FIDMetric(config, _context(tmp_path, 8))
    other_split.context.split_sha256 = "another"
    _feed(other_split, fake_images(6))
    assert other_split.compute()[0].provenance["reference_cached"] is False
    files[0].write_bytes(b"truncated")  # a broken cache file is recomputed, never used
    third = FIDMetric(config, _context(tmp_path, 8))
    _feed(third, fake_images(6))
    [c] = third.compute()
    assert c.provenance["reference_cached"] is False and c.value == pytest.approx(a.value, abs=1e-9)


def _official_pipeline(state, images: torch.Tensor, last_block: int) -> torch.Tensor:
    """DF-GAN code/lib/modules.py calculate_fid + code/models/inception.py, re-written for the test."""
    from torchvision.models import Inception3

    net = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False).eval()
    net.load_state_dict(state)
    norm = T.Compose([T.Normalize((-1, -1, -1), (2, 2, 2)), T.Resize((299, 299), antialias=False)])
    x = norm(images.clamp(-1, 1))
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True)
    x = x.clone()
    x[:, 0] = x[:, 0] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x[:, 1] = x[:, 1] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x[:, 2] = x[:, 2] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    stages = [
        ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "pool"],
        ["Conv2d_3b_1x1", "Conv2d_4a_3x3", "pool"],
        ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"],
        ["Mixed_7a", "Mixed_7b", "Mixed_7c"],
    ]
    with torch.no_grad():
        for stage in stages[: last_block + 1]:
            for name in stage:
                x = F.max_pool2d(x, kernel_size=3, stride=2) if name == "pool" else getattr(net, name)(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1).double()


def test_paper_features_follow_the_official_preprocessing(torchvision_weights):
    images = fake_images(2, size=48)
    state = torch.load(torchvision_weights, weights_only=True)
    extractor = build_extractor("paper", torchvision_weights, feature=2048)
    ours = extractor.extract(images)["pool"]
    expected = _official_pipeline(state, images, last_block=3)
    assert ours.dtype == torch.float64 and ours.shape == (2, 2048)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    assert extractor.info.backend == "torchvision" and extractor.info.stand_in is True
    small = build_extractor("paper", torchvision_weights, feature=64).extract(images)["pool"]
    torch.testing.assert_close(small, _official_pipeline(state, images, last_block=0), rtol=1e-5, atol=1e-5)


def test_paper_fid_equals_the_official_computation_on_the_same_images(torchvision_weights, tmp_path):
    """The whole `paper` FID (real images from the data cache, generated ones from [-1, 1]) against the
    official pipeline re-written above and a direct Fréchet distance, on the same test-made weights."""
    state = torch.load(torchvision_weights, weights_only=True)
    metric = FIDMetric(
        {"extractor": build_extractor("paper", torchvision_weights, feature=64)}, _context(tmp_path)
    )
    fake = fake_images(10)
    _feed(metric, fake)
    [value] = metric.compute()
    real = torch.from_numpy(real_images(12)).permute(0, 3, 1, 2).float() / 127.5 - 1
    official = direct_frechet(
        _official_pipeline(state, fake, last_block=0).numpy(),
        _official_pipeline(state, real, last_block=0).numpy(),
    )
    assert value.value > 0.1 and value.value == pytest.approx(official, rel=1e-6, abs=1e-4)
    assert value.provenance["mode"] == "paper" and (
        value.provenance["n_real"],
        value.provenance["n_fake"],
    ) == (12, 10)


def test_paper_fid_against_an_official_npz(torchvision_weights, tmp_path):
    extractor = build_extractor("paper", torchvision_weights, feature=64)
    mu, sigma = feature_statistics(extractor.extract(real_images(8))["pool"])
    npz = tmp_path / "bird_val256_FIDK0.npz"
    np.savez(npz, mu=mu, sigma=sigma)
    config = {"extractor": extractor}
    from_images = FIDMetric(config, _context(tmp_path, 8))
    from_npz = FIDMetric({**config, "reference_npz": str(npz)}, _context(tmp_path, 8))
    from_npz.context.real_images = None  # the official statistics replace the real images
    fake = fake_images(6)
    _feed(from_images, fake)
    _feed(from_npz, fake)
    [a], [b] = from_images.compute(), from_npz.compute()
    assert a.value > 0.1 and b.value == pytest.approx(a.value, rel=1e-9)
    assert b.provenance["reference_source"] == str(npz) and b.provenance["n_real"] is None
    assert b.provenance["mode"] == "paper" and len(b.provenance["reference_sha256"]) == 64
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=mu)
    broken = FIDMetric({**config, "reference_npz": str(bad)}, _context(tmp_path, 8))
    _feed(broken, fake)
    with pytest.raises(ConfigError, match=r"bad\.npz.*'mu' and 'sigma'"):
        broken.compute()


def test_clean_features_equal_clean_fid_on_the_same_files(clean_weights_2048, tmp_path):
    from cleanfid.fid import get_folder_features
    from cleanfid.inception_torchscript import InceptionV3W
    from PIL import Image

    images = real_images(5, size=40)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    model = InceptionV3W(str(clean_weights_2048.parent), download=False, resize_inside=False)
    theirs = get_folder_features(
        str(tmp_path),
        model=model,
        num_workers=0,
        batch_size=5,
        mode="clean",
        device=torch.device("cpu"),
        verbose=False,
    )
    ours = build_extractor("clean", clean_weights_2048).extract(images)["pool"].numpy()
    assert ours.shape == (5, 2048)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_clean_fid_matches_a_direct_computation(clean_weights_small, tmp_path):
    metric = FIDMetric(
        {"mode": "clean", "weights": str(clean_weights_small), "weights_note": RANDOM_NOTE, "stand_in": True},
        _context(tmp_path),
    )
    fake = fake_images(12)
    _feed(metric, fake)
    [value] = metric.compute()
    extractor = build_extractor("clean", clean_weights_small)
    direct = direct_frechet(
        extractor.extract(fake)["pool"].numpy(), extractor.extract(real_images())["pool"].numpy()
    )
    assert value.value > 1e-3 and value.value == pytest.approx(direct, rel=1e-4, abs=1e-3)
    assert value.provenance["backend"] == "clean-fid" and value.provenance["mode"] == "clean"
    assert value.provenance["stand_in"] is True and value.provenance["resize"].startswith("clean-fid")
    # the official npz statistics are of the paper-mode extractor: a clean-mode FID refuses them
    with pytest.raises(ConfigError, match=r"bird_val256_FIDK0\.npz.*FID mode 'clean'.*mode=paper"):
        FIDMetric(
            {"mode": "clean", "weights": str(clean_weights_small), "reference_npz": "bird_val256_FIDK0.npz"},
            _context(tmp_path),
        )


def test_offline_and_missing_weights_give_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("T2IGAN_WEIGHTS", raising=False)

    def offline(url):
        raise OSError("network is unreachable")

    monkeypatch.setattr(inception, "_hub_download", offline)
    with pytest.raises(WeightsNotFoundError) as info:
        build_extractor("standard")
    message = str(info.value)
    assert "inception/weights-inception-2015-12-05-6726825d.pth" in message
    assert "$T2IGAN_WEIGHTS" in message and "--inception-weights" in message
    assert "network is unreachable" in message
    with pytest.raises(WeightsNotFoundError, match="--inception-weights .*nowhere.pth: no such file"):
        build_extractor("paper", tmp_path / "nowhere.pth")


def test_weights_are_found_under_t2igan_weights(monkeypatch, fidelity_weights):
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(fidelity_weights.parent.parent))
    monkeypatch.setattr(inception, "_hub_download", lambda url: (_ for _ in ()).throw(OSError("offline")))
    assert inception.resolve_inception_weights("standard") == fidelity_weights


def test_wrong_layout_is_refused_naming_the_file(torchvision_weights, fidelity_weights):
    with pytest.raises(Exception, match="--inception-weights .*inception_v3_google-0cc3c7bd.pth"):
        build_extractor("standard", torchvision_weights)
    with pytest.raises(Exception, match="weights-inception-2015-12-05-6726825d.pth.*missing keys"):
        build_extractor("paper", fidelity_weights)


class _Payload:
    """A pickle that would create a marker file when unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_crafted_weights_file_does_not_run_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": _Payload(marker)}, path)
    with pytest.raises(Exception, match="not torch-fidelity's Inception weights"):
        build_extractor("standard", path)
    assert not marker.exists()


@pytest.mark.parametrize("mode", ["paper", "clean"])
def test_a_singular_product_is_rooted_once_where_the_distance_is_ours(mode):
    """The residual check reuses the root the paper and clean distances computed: a 2,048-d root takes
    seconds."""
    from unittest import mock

    from scipy import linalg

    rng = np.random.default_rng(3)
    a, b = np.maximum(rng.normal(size=(40, 6)), 0), np.maximum(rng.normal(size=(30, 6)), 0)
    a[:, 2] = b[:, 2] = 0.0  # a dead feature: the product is singular
    fake, real = feature_statistics(a), feature_statistics(b)
    with mock.patch("scipy.linalg.sqrtm", side_effect=linalg.sqrtm) as sqrtm:
        value, condition = checked_frechet("fid", fake, real, 40, 30, mode)
    assert sqrtm.call_count == 1
    assert condition["sqrtm_residual"] is not None and condition["sqrtm_residual"] < 1e-9
    assert value == pytest.approx(fid_from_statistics(mode, fake, real), rel=1e-9)
