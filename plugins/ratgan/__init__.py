"""RAT-GAN (Ye et al., IEEE TMM 2024) as a t2igan plugin: the model with its presets, the `rat`
(recurrent affine) fusion block, and the converter for the released checkpoints."""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.specs import ModelSpec

from . import presets
from .convert import convert_official
from .model import build
from .networks import rat_spec

MODEL_SPEC = ModelSpec(
    name="ratgan",
    build=build,
    presets=presets.PRESETS,
    # the repository has no LICENSE file; its README says "released for academic research use only"
    license="none stated (README: academic research use only)",
    citation=(
        "Senmao Ye, Huan Wang, Mingkui Tan, Fei Liu. Recurrent Affine Transformation for Text-to-image "
        "Synthesis. IEEE Transactions on Multimedia, 2024. arXiv:2204.10482"
    ),
    description="DF-GAN-style GAN whose affines are driven by one LSTM carried across all fusion blocks",
    url="https://github.com/senmaoy/Recurrent-Affine-Transformation-for-Text-to-image-Synthesis",
    paper_results=presets.PAPER_RESULTS,
    convert=convert_official,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)


@hookimpl
def t2igan_register_fusion_blocks(register):
    register(rat_spec())
