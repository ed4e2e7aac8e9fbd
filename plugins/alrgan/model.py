"""ALR-GAN as a GANModel: the multi-stage D losses (unconditional + conditional, per stage) and the G
objective Σ L_G_i + Σ_{i≥1} (L_ALR + λ1 L_REC + L_LVR) + λ2 L_DAMSM (the paper's total,
docs/official-code.md, ALR-GAN) + KL, the conditioning-augmentation term of the AttnGAN backbone (AttnGAN's
generator_loss / discriminator_loss / KL_loss for the backbone terms; the paper's total as we hold it
does not list KL, and CA without it is not AttnGAN's CA).

The DAMSM term masks same-class negatives with the batch's `extras["class_ids"]` (CUB, flowers), as
AttnGAN's generator_loss does. Not taken from AttnGAN: the moving average of G's weights it saves and
evaluates (`avg_param_G`, 0.999) and its `weights_init` — this model trains and evaluates its raw weights
from PyTorch's default initialisation, like every other model here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError, T2IGanError
from t2igan.nn.interfaces import Batch, BuildContext, GANModel, LossDict
from t2igan.text.damsm_loss import damsm_loss

from .lvr import build_extractor, lvr_terms, masked_lvr
from .networks import ALRGenerator, GeneratorConfig, GeneratorOutput, MultiStageDiscriminator, image_pyramid

logger = logging.getLogger(__name__)

DEFAULT_TEXT_DIM = 256  # DAMSM EMBEDDING_DIM: the `tiny` size when no encoder is given
DEFAULT_MAX_WORDS = 18  # DAMSM WORDS_NUM (t2igan.text.damsm): the most words its captions keep


@dataclass(frozen=True)
class LossSettings:
    alr: bool
    lvr: bool
    alr_weight: float
    lvr_weight: float
    lambda_rec: float
    gamma: float
    damsm_lambda: float
    kl_weight: float
    mask_threshold: float
    d_mismatch: bool


def bce(logits: Tensor, real: bool) -> Tensor:
    """The official Sigmoid + BCELoss against all-real or all-fake labels, on logits."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def stage_d_loss(stage: nn.Module, real: Tensor, fake: Tensor, sentence: Tensor, mismatch: bool) -> Tensor:
    """L_D_i = ½ [BCE(D(I*), 1) + BCE(D(Î), 0) + BCE(D(I*, s), 1) + BCE(D(Î, s), 0)] (paper), or with
    `mismatch` AttnGAN's (real + cond_real)/2 + (fake + cond_fake + cond_wrong)/3."""
    real_f, fake_f = stage(real), stage(fake.detach())
    uncond = bce(stage.uncond(real_f), True), bce(stage.uncond(fake_f), False)
    cond = bce(stage.cond(real_f, sentence), True), bce(stage.cond(fake_f, sentence), False)
    if not mismatch:
        return 0.5 * (uncond[0] + uncond[1] + cond[0] + cond[1])
    wrong = bce(stage.cond(real_f[:-1], sentence[1:]), False)
    return (uncond[0] + cond[0]) / 2 + (uncond[1] + cond[1] + wrong) / 3


def stage_g_loss(stage: nn.Module, fake: Tensor, sentence: Tensor) -> Tensor:
    """L_G_i = ½ [BCE(D(Î), 1) + BCE(D(Î, s), 1)] (paper)."""
    features = stage(fake)
    return 0.5 * (bce(stage.uncond(features), True) + bce(stage.cond(features, sentence), True))


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """AttnGAN KL_loss: -½ mean(1 + log σ² − μ² − σ²)."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class ALRGAN(GANModel):
    """ALR-GAN's losses. As in the DF-GAN plugin, the G step reuses the forward of the D step (scored by
    the updated discriminators); a batch the D step did not see gets a new forward. One D optimiser over
    all stage discriminators is equivalent to AttnGAN's one Adam per D: each D's loss reaches only its
    own parameters and Adam is per-parameter."""

    uses_words = True
    excluded_state_prefixes = ("lvr_features.",)  # frozen; rebuilt from its seed or its weights file

    def __init__(
        self,
        generator: ALRGenerator,
        discriminator: MultiStageDiscriminator,
        settings: LossSettings,
        lvr_features: nn.Module | None = None,
        damsm_image_encoder: nn.Module | None = None,
        text_encoder_name: str = "damsm",
    ):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.settings = settings
        self.text_encoder_name = text_encoder_name
        self.lvr_features = lvr_features
        # not a submodule: the frozen DAMSM image encoder belongs to the text encoder and its weights file
        self._damsm = (damsm_image_encoder,)

    @property
    def damsm_image_encoder(self) -> nn.Module | None:
        return self._damsm[0]

    def parameter_groups(self) -> dict[str, nn.Module]:
        groups: dict[str, nn.Module] = {"G": self.generator, "D": self.discriminator}
        if self.generator.alr is not None:
            groups["ALR"] = self.generator.alr  # inside G (trained with it); shown apart as well
        if self.lvr_features is not None:
            groups["LVR"] = self.lvr_features  # the frozen feature extractor of the LVR loss
        return groups

    # ------------------------------------------------------------------------------------ forward
    def _forward(self, batch: Batch) -> GeneratorOutput:
        text = batch.text
        if text.words is None and len(self.generator.next_stages):
            raise T2IGanError("alrgan needs word features: batch.text.words is None (set uses_words)")
        noise = self.sample_noise(len(text.sentence))
        return self.generator.run(noise, text.sentence, text.words, text.mask)

    def d_step(self, batch: Batch) -> LossDict:
        sentence = batch.text.sentence.detach()
        out = self._forward(batch)
        self.keep_fakes(batch, out if out.images[-1].requires_grad else None)
        reals = image_pyramid(batch.images, self.discriminator.sizes)
        losses: LossDict = {}
        for i, (stage, real, fake) in enumerate(
            zip(self.discriminator.stages, reals, out.images, strict=True)
        ):
            losses[f"d{i}"] = stage_d_loss(stage, real, fake, sentence, self.settings.d_mismatch)
        losses["loss"] = sum(losses.values())
        return losses

    def g_step(self, batch: Batch) -> LossDict:
        text = batch.text
        out = self.take_fakes(batch)
        if out is None:
            out = self._forward(batch)
        stages = self.discriminator.stages
        adversarial = sum(
            stage_g_loss(d, fake, text.sentence) for d, fake in zip(stages, out.images, strict=True)
        )
        terms: dict[str, Tensor] = {"adv": adversarial, "kl": kl_loss(out.mu, out.logvar)}
        total = adversarial + self.settings.kl_weight * terms["kl"]
        if self.generator.alr is not None:
            total = total + self._refinement_terms(batch, out, terms)
        if self.damsm_image_encoder is not None and self.settings.damsm_lambda > 0:
            regions, code = self.damsm_image_encoder(out.images[-1])
            class_ids = batch.extras.get("class_ids")
            terms["damsm"] = damsm_loss(regions, code, text, class_ids).total
            total = total + self.settings.damsm_lambda * terms["damsm"]
        return {"loss": total, **terms}

    def _refinement_terms(self, batch: Batch, out: GeneratorOutput, terms: dict[str, Tensor]) -> Tensor:
        """Σ_{i≥1} (L_ALR + λ1 L_REC + L_LVR); fills terms alr, rec (and lvr, lvr_perceptual, lvr_style)."""
        settings = self.settings
        reals = image_pyramid(batch.images, self.generator.config.sizes)
        alr = rec = lvr = perceptual = style = torch.zeros((), device=batch.images.device)
        weights = {"alr_alpha": [], "alr_beta": [], "alr_hard_share": []}  # logged: what φα, φβ learn
        for i, module in enumerate(self.generator.alr, start=1):
            stage = module.terms(
                reals[i - 1],
                self.generator.image_heads[i - 1],
                out.thetas[i - 1],
                out.words[i - 1],
                batch.text.mask,
                settings.gamma,
            )
            alr, rec = alr + stage.loss, rec + stage.reconstruction
            weights["alr_alpha"].append(stage.alpha.detach().mean())
            weights["alr_beta"].append(stage.beta.detach().mean())
            weights["alr_hard_share"].append((stage.hard != 0).float().mean())
            if settings.lvr:
                if self.lvr_features is None:  # the paper's LVR: on H_{i-1} and the real image's H*
                    visual = masked_lvr(
                        out.features[i - 1],
                        stage.h_star,
                        out.thetas[i - 1],
                        stage.theta_star,
                        settings.mask_threshold,
                    )
                else:  # our image-feature variants ("small", "vgg16")
                    visual = lvr_terms(
                        self.lvr_features,
                        out.images[i],
                        reals[i],
                        out.thetas[i - 1],
                        stage.theta_star,
                        settings.mask_threshold,
                    )
                lvr, perceptual, style = (
                    lvr + visual.loss,
                    perceptual + visual.perceptual,
                    style + visual.style,
                )
        terms.update(alr=alr, rec=rec, **{k: torch.stack(v).mean() for k, v in weights.items()})
        total = settings.alr_weight * alr + settings.lambda_rec * rec
        if settings.lvr:
            terms.update(lvr=lvr, lvr_perceptual=perceptual, lvr_style=style)
            total = total + settings.lvr_weight * lvr
        return total


# ------------------------------------------------------------------------------------------ build
def _text_dims(config: Mapping[str, Any], context: BuildContext) -> tuple[int, int]:
    """sentence_dim / word_dim: from the config (paper presets, checked against the encoder) or, when
    None (`tiny`), from the encoder given."""
    encoder = context.text_encoder
    dims = []
    for key, attribute in (("sentence_dim", "sentence_dim"), ("word_dim", "word_dim")):
        given = getattr(encoder, attribute, None) if encoder is not None else None
        value = config[key]
        if value is None:
            value = given if given is not None else DEFAULT_TEXT_DIM
        elif given is not None and given != value:
            raise ConfigError(
                f"alrgan: {key}={value} but the text encoder gives {given}-d features; "
                f"use a matching text encoder or set {key}=None to size the model from it"
            )
        dims.append(int(value))
    return dims[0], dims[1]


def _max_words(config: Mapping[str, Any], context: BuildContext) -> int:
    """`max_words`: None takes the text encoder's (the longest caption it encodes); a number smaller
    than the encoder's would fail on the first long caption, so it fails here."""
    given = getattr(context.text_encoder, "max_words", None)
    value = config["max_words"]
    if value is None:
        return int(given) if given is not None else DEFAULT_MAX_WORDS
    if given is not None and int(value) < int(given):
        raise ConfigError(
            f"alrgan: max_words={value} but the text encoder keeps up to {given} words; "
            f"set max_words={given} or None"
        )
    return int(value)


def _damsm_image_encoder(config: Mapping[str, Any], context: BuildContext) -> nn.Module | None:
    """The DAMSM image encoder for λ2 L_DAMSM: the text encoder's `image_encoder` attribute (the project
    attaches it to the DAMSM pairs it loads). Without one the term is off, with a warning."""
    if float(config["damsm_lambda"]) <= 0 or context.text_encoder is None:
        return None  # no encoder at all: a parameter count or a shape check, not a training run
    image_encoder = getattr(context.text_encoder, "image_encoder", None)
    if image_encoder is None:
        logger.warning(
            "alrgan: the text encoder has no `image_encoder`, so the DAMSM term (damsm_lambda=%s) is off; "
            "load the DAMSM pair with its image encoder to train with it",
            config["damsm_lambda"],
        )
        return None
    image_encoder.requires_grad_(False)  # frozen in GAN training, as AttnGAN's image_encoder
    return image_encoder.eval()


def _settings(config: Mapping[str, Any]) -> LossSettings:
    alr, lvr = bool(config["alr"]), bool(config["lvr"])
    if lvr and not alr:
        raise ConfigError(
            "alrgan: lvr=true needs alr=true (the LVR masks come from the ALR module's θ and θ*); "
            "use alr=false,lvr=false for the AttnGAN-style backbone"
        )
    return LossSettings(
        alr=alr,
        lvr=lvr,
        alr_weight=float(config["alr_weight"]),
        lvr_weight=float(config["lvr_weight"]),
        lambda_rec=float(config["lambda_rec"]),
        gamma=float(config["gamma"]),
        damsm_lambda=float(config["damsm_lambda"]),
        kl_weight=float(config["kl_weight"]),
        mask_threshold=float(config["lvr_mask_threshold"]),
        d_mismatch=bool(config["d_mismatch"]),
    )


def build(config: Mapping[str, Any], context: BuildContext) -> ALRGAN:
    """ALR-GAN from a preset config; `alr=false,lvr=false` is the AttnGAN-style backbone alone."""
    settings = _settings(config)
    sentence_dim, word_dim = _text_dims(config, context)
    g_config = GeneratorConfig(
        ngf=int(config["ngf"]),
        noise_dim=int(config["noise_dim"]),
        sentence_dim=sentence_dim,
        word_dim=word_dim,
        condition_dim=int(config["condition_dim"]),
        base_size=int(config["base_size"]),
        stages=int(config["stages"]),
        residual_blocks=int(config["residual_blocks"]),
        alr=settings.alr,
        max_words=_max_words(config, context),
        alr_hidden=int(config["alr_hidden"]),
    )
    if g_config.sizes[-1] != int(config["image_size"]):
        raise ConfigError(
            f"alrgan: image_size={config['image_size']} but base_size={g_config.base_size} with "
            f"stages={g_config.stages} ends at {g_config.sizes[-1]} px; change one of them"
        )
    generator = ALRGenerator(g_config)
    discriminator = MultiStageDiscriminator(int(config["ndf"]), sentence_dim, g_config.sizes)
    meta = torch.device(context.device).type == "meta"
    features = (
        build_extractor(str(config["lvr_features"]), config["lvr_vgg_weights"], load=not meta)
        if settings.lvr
        else None
    )
    model = ALRGAN(generator, discriminator, settings, features, _damsm_image_encoder(config, context))
    return model.to(context.device)
