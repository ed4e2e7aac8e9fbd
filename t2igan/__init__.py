"""t2igan: a plugin-based model zoo and benchmark harness for text-to-image GANs.

The Python API (`t2igan.create_model`, `list_models`, `load_split`, `train`, `evaluate`, `bench`,
`convert`) is defined in `t2igan.api` and imported on first use, so that `import t2igan` stays light.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Evaluation",
    "T2IModel",
    "bench",
    "convert",
    "create_model",
    "evaluate",
    "list_models",
    "load_split",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from t2igan import api

        return getattr(api, name)
    raise AttributeError(f"module 't2igan' has no attribute {name!r}")
