"""ALR-GAN (Tan et al., IEEE TMM 2023) as a t2igan plugin: our implementation from the paper (no code
was released) on an AttnGAN-style backbone, with its presets; there is no official checkpoint to convert."""

from __future__ import annotations

from t2igan.hookspecs import hookimpl
from t2igan.specs import ModelSpec

from . import presets
from .model import build

MODEL_SPEC = ModelSpec(
    name="alrgan",
    build=build,
    presets=presets.PRESETS,
    license="no code released; this re-implementation is t2igan's own (paper: IEEE copyright)",
    citation=(
        "Hongchen Tan, Baocai Yin, Kun Wei, Xiuping Liu, Xin Li. ALR-GAN: Adaptive Layout Refinement for "
        "Text-to-Image Synthesis. IEEE Transactions on Multimedia, 2023. arXiv:2304.06297"
    ),
    description=(
        "AttnGAN-style three-stage GAN with Adaptive Layout Refinement (θ vs. real θ*, easy/hard residual "
        "weighting) and Layout Visual Refinement (masked perceptual + style) losses"
    ),
    url="https://ieeexplore.ieee.org/document/10023990",
    paper_results=presets.PAPER_RESULTS,
    convert=None,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)
