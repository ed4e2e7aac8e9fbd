"""Registers the built-in text encoders: DAMSM (AttnGAN's bi-LSTM) and CLIP (through open_clip), each with
the recipe the project pre-trains it by on `shapes`. They are registered as a third party's would be.

Builders import their modules on first use, so listing plugins does not import open_clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from t2igan.hookspecs import hookimpl
from t2igan.specs import DATA_IMAGE_SIZE, EncoderRecipe, LoadedText, TextEncoderSpec, TrainedText

# The shapes recipes, tuned on the default split (figures: docs/measurements.md, and the DAMSMPretrainConfig
# docstring). Only keys that differ from the trainers' dataclass defaults are listed; the full config
# (defaults + these + the caller's) is what the encoder cache's key hashes.
DAMSM_RECIPE = {
    DATA_IMAGE_SIZE: 32,
    "image_size": 32,  # 32 px, 4x4 regions: as good as 64 px at a quarter of the image cost
    "grid": 4,
    "width": 16,
    "batch_size": 64,  # cheaper per image than 48 here, and more negatives
    "dropout": 0.0,  # the official 0.5 slows learning on 60 words: 0.848 -> 0.873 top-1 at 10 epochs
    "epochs": 12,  # 16 epochs: 0.892 top-1, colour+shape 0.979; 12 keep the first bench short
}
CLIP_RECIPE = {
    DATA_IMAGE_SIZE: 32,  # clip-small's own input size: no resize per batch
    "batch_size": 128,
    "lr": 2e-3,
    "warmup_steps": 60,
    # four captions per image per step and a logit scale starting at 40 (about where training takes it)
    # learn in 18 epochs what one caption learned in 40 (docs/measurements.md, the small CLIP's recipe)
    "captions_per_image": 4,
    "logit_scale_init": 40.0,
    "epochs": 18,
}


# ------------------------------------------------------------------------------------------- DAMSM


def _build_damsm(config: Mapping[str, Any], context: Any = None):
    from t2igan.text.damsm import build_damsm

    return build_damsm(config, context)


def _load_damsm(config: Mapping[str, Any], context: Any) -> LoadedText:
    from t2igan.text.damsm import load_for_run

    return load_for_run(config, context)


def _damsm_config(values: Mapping[str, Any]) -> dict[str, Any]:
    from t2igan.text.damsm_pretrain import DAMSMPretrainConfig

    return asdict(DAMSMPretrainConfig.from_mapping(values))


def _train_damsm(images, captions, config, device, seed, progress) -> TrainedText:
    from t2igan.text.damsm import save_damsm_checkpoint
    from t2igan.text.damsm_pretrain import pretrain_damsm

    text, image, _, stats = pretrain_damsm(images, captions, config, device, seed, progress)
    out = stats.as_dict()
    out["train_retrieval_top1"] = out.pop("retrieval_top1")
    out["epochs"] = len(stats.epoch_losses)
    object.__setattr__(text, "image_encoder", image)  # as load_ours gives it

    def save(path, stats: dict[str, Any]) -> None:
        save_damsm_checkpoint(path, text, image, stats=stats, config=stats["config"])

    return TrainedText(text, out, save)


def _load_damsm_ours(path, device="cpu") -> LoadedText:
    from t2igan.text.damsm import load_ours

    return load_ours(path, device)


def _damsm_retrieval(encoder, images, captions, candidates: int, seed: int) -> float:
    from t2igan.text.damsm_pretrain import retrieval_accuracy

    return retrieval_accuracy(encoder, encoder.image_encoder, images, captions, candidates, seed)


# -------------------------------------------------------------------------------------------- CLIP


def _build_clip(config: Mapping[str, Any], context: Any = None):
    from t2igan.text.clip import build_clip

    return build_clip(config, context)


def _clip_config(values: Mapping[str, Any]) -> dict[str, Any]:
    from t2igan.text.clip_pretrain import CLIPPretrainConfig

    return asdict(CLIPPretrainConfig.from_mapping(values))


def _train_clip(images, captions, config, device, seed, progress) -> TrainedText:
    import torch

    from t2igan.text.clip import save_clip_checkpoint
    from t2igan.text.clip_pretrain import pretrain_clip

    with torch.random.fork_rng(devices=[]):  # pretrain_clip seeds torch's global generator
        encoder, stats = pretrain_clip(images, captions, config, device, seed, progress)
    out = stats.as_dict()
    out.pop("config", None)
    out["epochs"] = len(stats.epoch_losses)

    def save(path, stats: dict[str, Any]) -> None:
        save_clip_checkpoint(path, encoder, stats=stats)

    return TrainedText(encoder, out, save)


def _load_clip_ours(path, device="cpu") -> LoadedText:
    from t2igan.text.clip import load_clip

    # the model config, name and input mode come from the checkpoint itself
    return LoadedText(load_clip(name="clip-small", pretrained=str(path), device=device))


def _clip_retrieval(encoder, images, captions, candidates: int, seed: int) -> float:
    from t2igan.text.clip_pretrain import retrieval_accuracy

    return retrieval_accuracy(encoder, images, captions, candidates, seed)


def _clip_architecture(config: Mapping[str, Any]) -> dict[str, Any]:
    """The CLIP's architecture file: the config only names it (`clip-small`), and a cached encoder must
    not outlive an edit of that JSON file."""
    if not config.get("model"):
        return {}
    from t2igan.text.clip import model_config

    return {"architecture": model_config(str(config["model"]))}


@hookimpl
def t2igan_register_text_encoders(register):
    register(
        TextEncoderSpec(
            name="damsm",
            build=_build_damsm,
            load=_load_damsm,
            description="AttnGAN's DAMSM bi-LSTM text encoder (256-d sentence, word features); official "
            "text_encoder*.pth files load strictly, or one the project pre-trains",
            license="AttnGAN code MIT; official weights as distributed with DF-GAN/AttnGAN metadata",
            config={"tag": "cub"},
            settings=("weights", "image_weights", "vocab"),
            recipe=EncoderRecipe(
                label="DAMSM encoder",
                defaults=DAMSM_RECIPE,
                config=_damsm_config,
                train=_train_damsm,
                load=_load_damsm_ours,
                retrieval=_damsm_retrieval,
            ),
        )
    )
    register(
        TextEncoderSpec(
            name="clip",
            build=_build_clip,
            description="CLIP through open_clip (ViT-B/32 with OpenAI weights for GALIP/RATLIP, or a small "
            "config the project pre-trains on shapes); sentence, token and intermediate ViT features",
            license="open_clip MIT; OpenAI CLIP weights MIT",
            config={"model": "ViT-B-32", "pretrained": "openai"},
            recipe=EncoderRecipe(
                label="CLIP encoder",
                defaults=CLIP_RECIPE,
                config=_clip_config,
                train=_train_clip,
                load=_load_clip_ours,
                retrieval=_clip_retrieval,
                key_extra=_clip_architecture,
            ),
        )
    )
