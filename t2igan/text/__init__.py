"""Text encoders and what they need: the DAMSM pair (bi-LSTM text + image encoder, its vocabulary,
loss and pre-training), CLIP, and the per-split text-embedding cache.

Names are imported on first use, so `import t2igan.text.<module>` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "t2igan.text.vocab": (
        "END_TOKEN",
        "CaptionsPickle",
        "Vocabulary",
        "parse_captions_pickle",
        "read_captions_pickle",
        "tokenize_caption",
    ),
    "t2igan.text.damsm": (
        "DAMSMEncoders",
        "DAMSMImageEncoder",
        "DAMSMTextEncoder",
        "SmallDAMSMImageEncoder",
        "build_damsm",
        "build_damsm_image_encoder",
        "build_image_encoder",
        "damsm_weights_ref",
        "load_damsm",
        "save_damsm_checkpoint",
    ),
    "t2igan.text.damsm_loss": ("DAMSMGammas", "DAMSMLoss", "damsm_loss", "sentence_loss", "words_loss"),
    "t2igan.text.damsm_pretrain": (
        "DAMSMPretrainConfig",
        "DAMSMPretrainStats",
        "pretrain_damsm",
        "retrieval_accuracy",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 't2igan.text' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
