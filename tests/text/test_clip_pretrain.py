"""Contrastive pre-training of the tiny CLIP on a synthetic set whose captions say what is drawn: the loss
falls, retrieval rises above chance, and the result saves and reloads as a frozen encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2igan.errors import ConfigError
from t2igan.text.clip import load_clip, save_clip_checkpoint
from t2igan.text.clip_pretrain import (
    CLIPPretrainConfig,
    _captions_of,
    contrastive_loss,
    pretrain_clip,
    retrieval_accuracy,
)

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
PLACES = {"top left": (0, 0), "top right": (0, 1), "bottom left": (1, 0), "bottom right": (1, 1)}


def make_squares(count: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    """Grey images with one coloured square in one quadrant; three captions naming colour and quadrant."""
    rng = np.random.default_rng(seed)
    images = np.full((count, size, size, 3), 128, dtype=np.uint8)
    captions, half = [], size // 2
    for i in range(count):
        colour, place = list(COLOURS)[rng.integers(4)], list(PLACES)[rng.integers(4)]
        row, col = PLACES[place]
        side = int(rng.integers(half // 2, half))
        y, x = (
            row * half + int(rng.integers(0, half - side + 1)),
            col * half + int(rng.integers(0, half - side + 1)),
        )
        images[i, y : y + side, x : x + side] = COLOURS[colour]
        captions.append(
            [f"a {colour} square at the {place}", f"the {place} holds a {colour} box", f"{colour}, {place}"]
        )
    return images, captions


def test_contrastive_loss_prefers_matching_pairs():
    emb = torch.eye(4)
    scale = torch.tensor(np.log(10.0))
    assert contrastive_loss(emb, emb, scale) < contrastive_loss(emb, emb.roll(1, 0), scale)
    torch.testing.assert_close(
        contrastive_loss(emb, emb.roll(1, 0), scale), contrastive_loss(emb.roll(1, 0), emb, scale)
    )


def test_contrastive_loss_of_several_caption_sets_is_their_mean():
    gen = torch.Generator().manual_seed(0)
    images, first, second = (torch.randn(5, 8, generator=gen) for _ in range(3))
    scale = torch.tensor(np.log(20.0))
    both = contrastive_loss(images, torch.cat([first, second]), scale)
    expected = (contrastive_loss(images, first, scale) + contrastive_loss(images, second, scale)) / 2
    torch.testing.assert_close(both, expected)
    with pytest.raises(ValueError, match="7 text embeddings for 5 images"):
        contrastive_loss(images, torch.randn(7, 8), scale)


def test_captions_of_picks_distinct_captions_of_each_image():
    offsets = np.array([0, 3, 4, 9])  # three images with 3, 1 and 5 captions
    batch = np.array([2, 0, 1])
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        rows = _captions_of(offsets, batch, 3, rng).reshape(3, len(batch))  # (caption set, image)
        for column, image in enumerate(batch):
            picked = rows[:, column]
            assert all(offsets[image] <= r < offsets[image + 1] for r in picked), (image, picked)
        assert len(set(rows[:, 0])) == 3 and len(set(rows[:, 1])) == 3  # images with ≥ 3 captions
        assert set(rows[:, 2]) == {3}  # the one-caption image repeats it
        seen.update(rows[:, 0])
    assert seen == set(range(4, 9))  # every caption of the 5-caption image gets drawn


def test_pretraining_starts_from_the_configured_logit_scale():
    images, captions = make_squares(32, seed=3)
    config = {"model": "clip-tiny", "epochs": 1, "batch_size": 16, "max_seconds": 0.0}
    config |= {"captions_per_image": 2, "logit_scale_init": 30.0, "eval_candidates": 8, "eval_images": 16}
    _, stats = pretrain_clip(images, captions, config, seed=0, progress=False)
    assert stats.steps == 1 and np.isfinite(stats.epoch_losses[0])
    # one AdamW step moves log(scale) by at most the warm-up learning rate
    assert stats.logit_scale == pytest.approx(30.0, rel=1e-3)
    for bad, match in (
        ({"captions_per_image": 0}, "captions_per_image must be ≥ 1"),
        ({"captions_per_image": 1.5}, "captions_per_image must be a whole number"),
        ({"logit_scale_init": 500.0}, r"logit_scale_init must be in \[1, 100\]"),
    ):
        with pytest.raises(ConfigError, match=match):
            CLIPPretrainConfig.from_mapping(bad)
        with pytest.raises(ConfigError, match=match):  # a config object is checked before training too
            pretrain_clip(images, captions, CLIPPretrainConfig(model="clip-tiny", **bad), progress=False)


@pytest.mark.numerics
def test_pretraining_lowers_loss_and_beats_chance(tmp_path, numerics_seed, claim):
    train, test = make_squares(160, seed=0), make_squares(64, seed=1)
    config = {
        "model": "clip-tiny",
        "epochs": 24,  # at 16, one seed in ten still matched by colour alone (top-1 4x chance)
        "batch_size": 16,
        "lr": 1e-3,
        "warmup_steps": 10,
        "eval_candidates": 16,
        "eval_images": 64,
    }
    encoder, stats = pretrain_clip(*train, config, seed=numerics_seed, progress=False)
    assert stats.steps == 24 * 10 and len(stats.epoch_losses) == 24
    # bounds and the margins they keep over seeds x settings: docs/measurements.md
    claim.above("first - last epoch loss", stats.epoch_losses[0] - stats.epoch_losses[-1], 0.9)
    # colour alone gives about 4x chance; above 5x needs the quadrant too
    chance = 1 / 16
    top1 = retrieval_accuracy(encoder, *test, n_candidates=16, seed=0)
    claim.above("test top-1 / chance", top1 / chance, 5)
    assert stats.train_retrieval_top1 is not None
    claim.above("training top-1 / chance", stats.train_retrieval_top1 / chance, 5)
    path = save_clip_checkpoint(tmp_path / "clip-tiny-squares.pt", encoder, stats.as_dict())
    reloaded = load_clip("clip-tiny", path)
    assert reloaded.input_mode == "clean" and reloaded.source.stats["steps"] == stats.steps
    assert retrieval_accuracy(reloaded, *test, n_candidates=16, seed=0) == pytest.approx(top1)


def test_untrained_model_is_near_chance_and_inputs_are_checked():
    images, captions = make_squares(64, seed=2)
    torch.manual_seed(0)
    untrained = load_clip("clip-tiny", None, input_mode="clean")
    assert retrieval_accuracy(untrained, images, captions, n_candidates=16, seed=0) < 0.3
    with pytest.raises(ConfigError, match="n_candidates"):
        retrieval_accuracy(untrained, images, captions, n_candidates=100)
    with pytest.raises(ConfigError, match="caption lists"):
        pretrain_clip(images, captions[:-1], {"model": "clip-tiny"}, progress=False)
    with pytest.raises(ConfigError, match="unknown CLIP pre-training keys"):
        CLIPPretrainConfig.from_mapping({"epoch": 3})
