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
    license=presets.LICENSE,
    citation=presets.CITATION,
    default_preset="tiny",
    description=presets.DESCRIPTION,
    url=presets.URL,
    paper_results=presets.PAPER_RESULTS,
    convert=None,
)


@hookimpl
def t2igan_register_models(register):
    register(MODEL_SPEC)
