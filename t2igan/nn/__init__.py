"""The interfaces every model implements, and the layers and losses several models share."""

from t2igan.nn.interfaces import (
    Batch,
    BuildContext,
    Discriminator,
    FusionBlock,
    GANModel,
    Generator,
    LossDict,
    SharedFusionState,
    TextEncoder,
    TextFeatures,
    count_parameters,
)

__all__ = [
    "Batch",
    "BuildContext",
    "Discriminator",
    "FusionBlock",
    "GANModel",
    "Generator",
    "LossDict",
    "SharedFusionState",
    "TextEncoder",
    "TextFeatures",
    "count_parameters",
]
