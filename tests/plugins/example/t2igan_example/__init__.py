"""A third-party t2igan plugin: a tiny conditional GAN, registered through the `t2igan` entry point.

It is what docs/plugins.md walks through: a generator, a discriminator, a GANModel with its own
losses, one preset, and the hook that registers the ModelSpec.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2igan.hookspecs import hookimpl
from t2igan.nn import Discriminator, GANModel, Generator
from t2igan.specs import ModelSpec, Optimizer, Preset


class FiLMBlock(nn.Module):
    """Upsample ×2, conv, then scale and shift by the condition."""

    def __init__(self, cond_dim: int, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * out_ch)

    def forward(self, h, cond):
        h = self.conv(F.interpolate(h, scale_factor=2))
        gamma, beta = self.film(cond).chunk(2, dim=1)
        return F.leaky_relu(h * (1 + gamma[..., None, None]) + beta[..., None, None], 0.2)


class ExampleGenerator(Generator):
    def __init__(self, noise_dim: int, cond_dim: int, channels: int, image_size: int):
        super().__init__()
        self.noise_dim, self.image_size = noise_dim, image_size
        self.fc = nn.Linear(noise_dim, channels * 4 * 4)
        n_up = (image_size // 4).bit_length() - 1
        self.blocks = nn.ModuleList(FiLMBlock(noise_dim + cond_dim, channels, channels) for _ in range(n_up))
        self.to_rgb = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, noise, sentence, words=None, mask=None):
        cond = torch.cat([noise, sentence], dim=1)
        h = self.fc(noise).view(len(noise), -1, 4, 4)
        for block in self.blocks:
            h = block(h, cond)
        return torch.tanh(self.to_rgb(h))


class ExampleDiscriminator(Discriminator):
    def __init__(self, cond_dim: int, channels: int, image_size: int):
        super().__init__()
        layers, ch, size = [nn.Conv2d(3, channels, 3, padding=1)], channels, image_size
        while size > 4:
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 4, stride=2, padding=1)]
            size //= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(ch + cond_dim, ch, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(ch, 1, 4)
        )

    def features(self, images):
        return self.body(images)

    def logits(self, features, sentence):
        tiled = sentence[..., None, None].expand(-1, -1, *features.shape[-2:])
        return self.head(torch.cat([features, tiled], dim=1)).flatten(1)


class ExampleGAN(GANModel):
    """Hinge loss with a mismatched-caption term, as DF-GAN's, without a gradient penalty."""

    def __init__(self, config):
        super().__init__()
        size, ch, cond = config["image_size"], config["channels"], config["cond_dim"]
        self.generator = ExampleGenerator(config["noise_dim"], cond, ch, size)
        self.discriminator = ExampleDiscriminator(cond, ch, size)
        self.text_encoder_name = "damsm"

    def d_step(self, batch):
        sentence = batch.text.sentence
        fake = self.generator(self.sample_noise(len(sentence)), sentence).detach()
        real_features = self.discriminator.features(batch.images)
        real = F.relu(1 - self.discriminator.logits(real_features, sentence)).mean()
        mismatched = F.relu(1 + self.discriminator.logits(real_features, sentence.roll(1, 0))).mean()
        fake_loss = F.relu(1 + self.discriminator(fake, sentence)).mean()
        return {
            "loss": real + (fake_loss + mismatched) / 2,
            "real": real,
            "fake": fake_loss,
            "mis": mismatched,
        }

    def g_step(self, batch):
        sentence = batch.text.sentence
        fake = self.generator(self.sample_noise(len(sentence)), sentence)
        return {"loss": -self.discriminator(fake, sentence).mean()}


def build(config, context):
    return ExampleGAN(config)


TINY = Preset(
    name="tiny",
    config={
        "image_size": 32,
        "channels": 16,
        "noise_dim": 32,
        "cond_dim": 256,
    },
    optimizer=Optimizer(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9)),
    image_size=32,
    batch_size=16,
    text_encoder="damsm",
    description="32 px on CPU",
)


@hookimpl
def t2igan_register_models(register):
    register(
        ModelSpec(
            name="example",
            build=build,
            presets={"tiny": TINY},
            license="MIT",
            citation="t2igan test suite: a minimal third-party plugin",
            description="A tiny FiLM-conditioned GAN used to test the plugin interface.",
        )
    )
