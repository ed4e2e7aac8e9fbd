"""DF-GAN as a GANModel: one D step (hinge on real/fake/mismatched + MA-GP on real images and sentences),
one G step (-mean logits), following tobran/DF-GAN code/lib/modules.py `train`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Batch, BuildContext, GANModel, LossDict
from t2igan.nn.losses import discriminator_hinge_loss, generator_hinge_loss

from .networks import DFGANDiscriminator, DFGANGenerator

TRUNCATION_BOUND = 2.0  # DF-GAN code/lib/utils.py truncated_noise: truncnorm(-2, 2) * truncation


class DFGAN(GANModel):
    """DF-GAN's losses on its generator and discriminator (NetD `backbone` + NetC `head`).

    As in the official loop, the G step scores the very images generated in the D step (one generator
    forward per iteration), now judged by the updated discriminator; a G step for a batch the D step
    did not see generates afresh.
    """

    def __init__(
        self,
        generator: DFGANGenerator,
        discriminator: DFGANDiscriminator,
        text_encoder_name: str,
        magp_weight: float = 2.0,
        magp_power: float = 6.0,
        truncation: float | None = None,
        mismatch: str = "roll_features",
    ):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.text_encoder_name = text_encoder_name
        self.magp_weight, self.magp_power = magp_weight, magp_power
        self.truncation, self.mismatch = truncation, mismatch

    def parameter_groups(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator.backbone, "C": self.discriminator.head}

    def d_step(self, batch: Batch) -> LossDict:
        images = batch.images.detach().requires_grad_(True)
        sentence = batch.text.sentence.detach().requires_grad_(True)
        fake = self.generator(self.sample_noise(len(sentence)), batch.text.sentence)
        self.keep_fakes(batch, fake if fake.requires_grad else None)
        return discriminator_hinge_loss(
            self.discriminator.logits,
            self.discriminator.features(images),
            self.discriminator.features(fake.detach()),
            sentence,
            mismatch=self.mismatch,
            gp_inputs=(images, sentence),
            gp_weight=self.magp_weight,
            gp_power=self.magp_power,
        )

    def g_step(self, batch: Batch) -> LossDict:
        sentence = batch.text.sentence
        fake = self.take_fakes(batch)
        if fake is None:
            fake = self.generator(self.sample_noise(len(sentence)), sentence)
        return {"loss": generator_hinge_loss(self.discriminator(fake, sentence))}

    def eval_noise(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Evaluation noise: N(0, I) truncated to ±2 and scaled by `truncation` (0.88 in the released
        configs), or plain N(0, I) when `truncation` is None."""
        if self.truncation is None:
            return self.sample_noise(batch_size, generator)
        device = next(self.generator.parameters()).device
        noise = torch.empty(
            batch_size, self.generator.noise_dim, device=generator.device if generator else device
        )
        noise = torch.nn.init.trunc_normal_(
            noise, 0.0, 1.0, -TRUNCATION_BOUND, TRUNCATION_BOUND, generator=generator
        )
        return (noise * self.truncation).to(device)


def _check_sentence_dim(config: Mapping[str, Any], context: BuildContext) -> None:
    encoder = context.text_encoder
    if encoder is not None and getattr(encoder, "sentence_dim", config["cond_dim"]) != config["cond_dim"]:
        raise ConfigError(
            f"cond_dim={config['cond_dim']} but the text encoder gives {encoder.sentence_dim}-d sentences; "
            f"set cond_dim={encoder.sentence_dim} or use a matching text encoder"
        )


def build(config: Mapping[str, Any], context: BuildContext) -> DFGAN:
    """DF-GAN from a preset config; the fusion block comes from the registry (`fusion=rat` works)."""
    _check_sentence_dim(config, context)
    fusion = context.registry.fusion_block(config["fusion"])
    generator = DFGANGenerator(
        config["nf"], config["noise_dim"], config["cond_dim"], config["image_size"], fusion
    )
    discriminator = DFGANDiscriminator(config["nf"], config["cond_dim"], config["image_size"])
    model = DFGAN(
        generator,
        discriminator,
        text_encoder_name="damsm",
        magp_weight=config["magp_weight"],
        magp_power=config["magp_power"],
        truncation=config["truncation"],
    )
    return model.to(context.device)
