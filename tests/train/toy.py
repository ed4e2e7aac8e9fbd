"""A toy conditional GAN for Trainer tests: small enough to train in milliseconds, honest losses."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.nn import Batch, Discriminator, GANModel, Generator, TextFeatures


class ToyGenerator(Generator):
    def __init__(self, noise_dim: int = 8, cond_dim: int = 4, image_size: int = 8):
        super().__init__()
        self.noise_dim, self.image_size = noise_dim, image_size
        self.fc = nn.Linear(noise_dim + cond_dim, 3 * image_size * image_size)

    def forward(self, noise, sentence, words=None, mask=None):
        out = self.fc(torch.cat([noise, sentence], dim=1))
        return torch.tanh(out.view(-1, 3, self.image_size, self.image_size))


class ToyDiscriminator(Discriminator):
    def __init__(self, cond_dim: int = 4, image_size: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * image_size * image_size + cond_dim, 1)

    def features(self, images):
        return F.leaky_relu(self.conv(images), 0.2).flatten(1)

    def logits(self, features, sentence):
        return self.head(torch.cat([features, sentence], dim=1))


class ToyGAN(GANModel):
    def __init__(self, two_phase_d: bool = False):
        super().__init__()
        self.generator, self.discriminator = ToyGenerator(), ToyDiscriminator()
        self.text_encoder_name = "none"
        self.two_phase_d = two_phase_d
        self.poison_at_call: int | None = None
        self.interrupt_at_call: int | None = None
        self.signals_at_call: tuple[int, list[int]] | None = None  # (call, signals sent to this process)
        self.calls = 0

    def _d_hinge(self, batch: Batch) -> dict[str, Tensor]:
        s = batch.text.sentence
        fake = self.generator(self.sample_noise(len(s)), s).detach()
        real = F.relu(1 - self.discriminator(batch.images, s)).mean()
        fake_loss = F.relu(1 + self.discriminator(fake, s)).mean()
        return {"loss": real + fake_loss, "real": real, "fake": fake_loss}

    def d_step(self, batch: Batch) -> dict[str, Tensor] | Iterator[dict[str, Tensor]]:
        self.calls += 1
        if self.interrupt_at_call is not None and self.calls >= self.interrupt_at_call:
            raise KeyboardInterrupt
        if self.signals_at_call is not None and self.calls == self.signals_at_call[0]:
            for signum in self.signals_at_call[1]:
                os.kill(os.getpid(), signum)
        if self.poison_at_call is not None and self.calls >= self.poison_at_call:
            return {"loss": torch.tensor(float("nan"), requires_grad=True)}
        if not self.two_phase_d:
            return self._d_hinge(batch)
        return self._two_phases(batch)

    def _two_phases(self, batch: Batch) -> Iterator[dict[str, Tensor]]:
        yield self._d_hinge(batch)
        penalty = sum(p.pow(2).sum() for p in self.discriminator.parameters()) * 1e-3
        yield {"loss": penalty}

    def g_step(self, batch: Batch) -> dict[str, Tensor]:
        s = batch.text.sentence
        fake = self.generator(self.sample_noise(len(s)), s)
        return {"loss": -self.discriminator(fake, s).mean()}


class ToySource:
    """Deterministic batches from (epoch, index): a fixed random dataset of 24 images."""

    def __init__(self, batch_size: int = 4, n: int = 24):
        g = torch.Generator().manual_seed(7)
        self.images = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
        self.sentences = torch.randn(n, 4, generator=g)
        self.batch_size = batch_size
        self.steps_per_epoch = n // batch_size

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(epoch))
        for i in range(start, self.steps_per_epoch):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield Batch(self.images[idx], TextFeatures(self.sentences[idx]))
