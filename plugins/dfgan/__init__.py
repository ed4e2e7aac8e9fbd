"""DF-GAN (Tao et al., CVPR 2022) as a t2igan plugin: the model with its presets, the `dfblock`
fusion block, and the converter for the released checkpoints."""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.specs import ModelSpec

from . import presets
from .convert import convert_official
from .model import build
from .networks import dfblock_spec

MODEL_SPEC = ModelSpec(
    name="dfgan",
    build=build,
    presets=presets.PRESETS,
    license=presets.LICENSE,
    citation=presets.CITATION,
    default_preset="tiny",
    description=presets.DESCRIPTION,
    url=presets.URL,
    paper_results=presets.PAPER_RESULTS,
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)


@hookimpl
def t2igan_register_fusion_blocks(register):
    register(dfblock_spec())
