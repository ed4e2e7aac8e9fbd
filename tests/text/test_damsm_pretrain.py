"""DAMSM pre-training on a tiny synthetic set: the loss falls, retrieval beats chance and an untrained
pair, results are reproducible from the seed, and the trained pair survives a checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from t2igan.errors import ConfigError
from t2igan.text.damsm import DAMSMTextEncoder, SmallDAMSMImageEncoder, load_damsm, save_damsm_checkpoint
from t2igan.text.damsm_pretrain import DAMSMPretrainConfig, pretrain_damsm, retrieval_accuracy

CONFIG = {"epochs": 4, "batch_size": 16, "image_size": 32, "width": 16, "eval_candidates": 16}


@pytest.fixture(scope="module")
def trained(squares_train, squares_test, numerics_seed):
    images, captions, classes = squares_train
    test_images, test_captions, test_classes = squares_test
    return pretrain_damsm(
        images,
        captions,
        CONFIG,
        seed=numerics_seed,
        progress=False,
        class_ids=classes,
        eval_images=test_images,
        eval_captions=test_captions,
        eval_class_ids=test_classes,
    )


@pytest.mark.numerics
def test_pretraining_lowers_the_loss_and_beats_chance(trained, squares_test, claim):
    text, image, vocab, stats = trained
    assert stats.steps == 4 * (96 // 16) and len(stats.epoch_losses) == 4 and stats.seconds > 0
    # over seeds 0-9 x 5 settings the ratio is 0.30-0.40 and top-1 is 9-13x chance (docs/measurements.md)
    claim.below("last / first epoch loss", stats.epoch_losses[-1] / stats.epoch_losses[0], 0.6)
    assert {"red", "yellow", "top", "left"} <= set(vocab.words)
    assert not text.training and not image.training
    test_images, test_captions, test_classes = squares_test
    torch.manual_seed(0)
    untrained = retrieval_accuracy(
        DAMSMTextEncoder(vocab),
        SmallDAMSMImageEncoder(input_size=32, width=16),
        test_images,
        test_captions,
        16,
        seed=0,
        class_ids=test_classes,
    )
    chance = 1 / 16
    assert stats.retrieval_candidates == 16
    claim.above("text-to-image top-1 / chance", stats.retrieval_top1 / chance, 4)
    claim.above("top-1 gain over the untrained pair", stats.retrieval_top1 - untrained, 0.2)
    other_way = retrieval_accuracy(
        text, image, test_images, test_captions, 16, seed=0, class_ids=test_classes, direction="image_to_text"
    )
    claim.above("image-to-text top-1 / chance", other_way / chance, 3)


def test_trained_pair_survives_a_checkpoint(trained, squares_test, tmp_path):
    text, image, vocab, stats = trained
    path = save_damsm_checkpoint(tmp_path / "damsm.pt", text, image, stats=stats.as_dict())
    encoders = load_damsm(path)
    test_images, test_captions, test_classes = squares_test
    reloaded = retrieval_accuracy(
        encoders.text_encoder, encoders.image_encoder, test_images, test_captions, 16, 0, test_classes
    )
    assert reloaded == stats.retrieval_top1
    assert encoders.stats["epoch_losses"] == stats.epoch_losses


def test_pretraining_is_reproducible_and_leaves_the_global_rng_alone(squares_train):
    images, captions, _ = squares_train
    config = {**CONFIG, "epochs": 1, "eval_candidates": 8}
    before = torch.get_rng_state()
    runs = [pretrain_damsm(images[:32], captions[:32], config, seed=3, progress=False)[3] for _ in range(2)]
    assert torch.equal(before, torch.get_rng_state())
    assert runs[0].epoch_losses == runs[1].epoch_losses and runs[0].retrieval_top1 == runs[1].retrieval_top1
    other = pretrain_damsm(images[:32], captions[:32], config, seed=4, progress=False)[3]
    assert other.epoch_losses != runs[0].epoch_losses


def test_bad_inputs_are_refused(squares_train, trained):
    images, captions, _ = squares_train
    text, image, _, _ = trained
    with pytest.raises(ConfigError, match="unknown DAMSM pre-training keys"):
        DAMSMPretrainConfig.from_mapping({"epoch": 3})
    with pytest.raises(ConfigError, match="one list per image"):
        pretrain_damsm(images[:4], captions[:3], CONFIG, progress=False)
    with pytest.raises(ConfigError, match="uint8"):
        pretrain_damsm(images[:4].astype("float32"), captions[:4], CONFIG, progress=False)
    with pytest.raises(ConfigError, match="direction"):
        retrieval_accuracy(text, image, images[:4], captions[:4], direction="both")
    with pytest.raises(ConfigError, match="another image"):
        retrieval_accuracy(text, image, images[:4], captions[:4], 4, class_ids=[1, 1, 1, 1])
