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
    license=presets.LICENSE,
    citation=presets.CITATION,
    default_preset="tiny",
    description=presets.DESCRIPTION,
    url=presets.URL,
    paper_results=presets.PAPER_RESULTS,
    optimises=("clip_score",),  # its generator loss adds the CLIP cosine similarity of image and caption
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)
