"""GALIP (Tao et al., CVPR 2023) as a t2igan plugin: the model with its presets and the converter for the
released checkpoints. The networks are the shared CLIP-GAN of t2igan.nn.clip_gan."""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.specs import ModelSpec

from . import presets
from .convert import convert_official
from .model import build

MODEL_SPEC = ModelSpec(
    name="galip",
    build=build,
    presets=presets.PRESETS,
    # LICENSE file: MIT ("Copyright (c) 2022 MingTao"); the README badge says CC BY-NC-SA 4.0 and "released for
    # academic research use only". The two conflict; both are stated.
    license="MIT (LICENSE file); README: CC BY-NC-SA 4.0, academic research use only (conflicting)",
    citation=(
        "Ming Tao, Bing-Kun Bao, Hao Tang, Changsheng Xu. GALIP: Generative Adversarial CLIPs for Text-to-Image "
        "Synthesis. CVPR 2023. arXiv:2301.12959"
    ),
    description="GAN with a frozen CLIP-ViT in both G (prompted mapper) and D (Mate-D on CLIP features)",
    url=presets.URL,
    paper_results=presets.PAPER_RESULTS,
    optimises=("clip_score",),  # its generator loss adds the CLIP cosine similarity of image and caption
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)
