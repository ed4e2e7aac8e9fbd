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
    # tobran/DF-GAN LICENSE.md; the README adds "released for academic research use only"
    license="CC BY-NC-SA 4.0",
    citation=(
        "Ming Tao, Hao Tang, Fei Wu, Xiao-Yuan Jing, Bing-Kun Bao, Changsheng Xu. DF-GAN: A Simple and "
        "Effective Baseline for Text-to-Image Synthesis. CVPR 2022. arXiv:2008.05865"
    ),
    description="One-stage GAN with deep text-image fusion blocks, hinge loss and MA-GP",
    url="https://github.com/tobran/DF-GAN",
    paper_results=presets.PAPER_RESULTS,
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)


@hookimpl
def t2igan_register_fusion_blocks(register):
    register(dfblock_spec())
