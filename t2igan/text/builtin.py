"""Registers the built-in text encoders: DAMSM (AttnGAN's bi-LSTM) and CLIP (through open_clip).

Builders import their modules on first use, so listing plugins does not import open_clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from t2igan.hookspecs import hookimpl
from t2igan.specs import TextEncoderSpec


def _build_damsm(config: Mapping[str, Any], context: Any = None):
    from t2igan.text.damsm import build_damsm

    return build_damsm(config, context)


def _build_clip(config: Mapping[str, Any], context: Any = None):
    from t2igan.text.clip import build_clip

    return build_clip(config, context)


@hookimpl
def t2igan_register_text_encoders(register):
    register(
        TextEncoderSpec(
            name="damsm",
            build=_build_damsm,
            description="AttnGAN's DAMSM bi-LSTM text encoder (256-d sentence, word features); official "
            "text_encoder*.pth files load strictly, or one the project pre-trains",
            license="AttnGAN code MIT; official weights as distributed with DF-GAN/AttnGAN metadata",
            config={"tag": "cub"},
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
        )
    )
