"""RATLIP (Lin, Lu, Chen, arXiv 2024) as a t2igan plugin: the model with its presets and the converter for
checkpoints in the official layout. The networks are the shared CLIP-GAN of t2igan.nn.clip_gan with
RATLIP's own recurrent affines and Conv_shuffle (networks.py, shuffle_attention.py)."""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.specs import ModelSpec

from . import presets
from .convert import convert_official
from .model import build

MODEL_SPEC = ModelSpec(
    name="ratlip",
    build=build,
    presets=presets.PRESETS,
    license="MIT (LICENSE file, Copyright (c) 2024 Xijun Lu)",
    citation=(
        "Chengde Lin, Xijun Lu, Guangxi Chen. RATLIP: Generative Adversarial CLIP Text-to-Image Synthesis "
        "Based on Recurrent Affine Transformations. arXiv:2405.08114, 2024"
    ),
    description=(
        "GALIP with recurrent affines (one LSTM per affine) in the CLIP adapter and Shuffle Attention after "
        "the generator convs"
    ),
    url=presets.URL,
    paper_results=presets.PAPER_RESULTS,
    optimises=("clip_score",),  # its generator loss adds the CLIP cosine similarity of image and caption
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)
