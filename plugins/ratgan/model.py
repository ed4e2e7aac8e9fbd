"""RAT-GAN as a GANModel: the D update is two optimiser steps as in the official loop (hinge with B-1
shifted mismatched pairs, then MA-GP on its own), the G step is -mean logits (code/main.py `train`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Batch, BuildContext, GANModel, LossDict
from t2igan.nn.losses import discriminator_hinge_loss, generator_hinge_loss, ma_gp_loss

from .networks import RATGANDiscriminator, RATGANGenerator


class RATGAN(GANModel):
    """RAT-GAN's losses. The G step scores the images generated in the D step (one generator forward
    per iteration, as the official loop does); for a batch the D step did not see it generates anew."""

    def __init__(
        self,
        generator: RATGANGenerator,
        discriminator: RATGANDiscriminator,
        text_encoder_name: str,
        magp_weight: float = 2.0,
        magp_power: float = 6.0,
        affines_per_block: int = 4,
        official_unused_layers: bool = False,
    ):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.text_encoder_name = text_encoder_name
        self.magp_weight, self.magp_power = magp_weight, magp_power
        # what the official-checkpoint converter needs to know about this model's layout
        self.affines_per_block = affines_per_block
        self.official_unused_layers = official_unused_layers

    def d_step(self, batch: Batch) -> Iterator[LossDict]:
        return self._d_phases(batch)

    def _d_phases(self, batch: Batch) -> Iterator[LossDict]:
        sentence = batch.text.sentence.detach()
        fake = self.generator(self.sample_noise(len(sentence)), sentence)
        self.keep_fakes(batch, fake if fake.requires_grad else None)
        yield discriminator_hinge_loss(
            self.discriminator.logits,
            self.discriminator.features(batch.images),
            self.discriminator.features(fake.detach()),
            sentence,
            mismatch="shift",
        )
        # computed after the Trainer stepped on the hinge loss: the penalty sees the updated D
        penalty = ma_gp_loss(self.discriminator, batch.images, sentence, self.magp_weight, self.magp_power)
        yield {"loss": penalty, "magp": penalty}

    def g_step(self, batch: Batch) -> LossDict:
        sentence = batch.text.sentence
        fake = self.take_fakes(batch)
        if fake is None:
            fake = self.generator(self.sample_noise(len(sentence)), sentence)
        return {"loss": generator_hinge_loss(self.discriminator(fake, sentence))}


def build(config: Mapping[str, Any], context: BuildContext) -> RATGAN:
    """RAT-GAN from a preset config; the fusion block comes from the registry (`rat` by default)."""
    encoder = context.text_encoder
    if encoder is not None and getattr(encoder, "sentence_dim", config["cond_dim"]) != config["cond_dim"]:
        raise ConfigError(
            f"cond_dim={config['cond_dim']} but the text encoder gives {encoder.sentence_dim}-d sentences"
        )
    if config["affines_per_block"] not in (4, 6):
        raise ConfigError(
            f"affines_per_block={config['affines_per_block']}: expected 4 (bird, coco) or 6 (flower)"
        )
    fusion = context.registry.fusion_block(config["fusion"])
    generator = RATGANGenerator(
        config["nf"],
        config["noise_dim"],
        config["cond_dim"],
        config["image_size"],
        fusion,
        affines_per_block=config["affines_per_block"],
        keep_unused=config["official_unused_layers"],
    )
    discriminator = RATGANDiscriminator(
        config["nf"], config["cond_dim"], config["image_size"], attention=bool(config["d_attention"])
    )
    model = RATGAN(
        generator,
        discriminator,
        text_encoder_name="damsm",
        magp_weight=config["magp_weight"],
        magp_power=config["magp_power"],
        affines_per_block=config["affines_per_block"],
        official_unused_layers=config["official_unused_layers"],
    )
    return model.to(context.device)
