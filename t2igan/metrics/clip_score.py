"""CLIP score as GALIP/RATLIP compute it (mean cosine similarity of the generated image's CLIP embedding
and its caption's, no ×100, no clipping) and CLIP R-precision; the image input transform is `paper`
(GALIP's [0.5, 1] double mapping) or `clean` (correct [0, 1]), recorded with every value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from t2igan import __version__ as T2IGAN_VERSION
from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalBatch, EvalContext
from t2igan.metrics.images import to_float
from t2igan.metrics.inception import package_version
from t2igan.metrics.r_precision import RPrecisionMetric
from t2igan.metrics.values import MetricValue, make_provenance, weights_provenance

# OpenAI CLIP normalisation, as GALIP code/lib/utils.py transf_to_CLIP_input writes it
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_MODES = ("paper", "clean")


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def clip_input(
    images: Any,
    mode: str,
    size: Any = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> Tensor:
    """Images in [-1, 1] -> CLIP's normalised input.

    `paper`: GALIP's transf_to_CLIP_input — nearest resize of x*0.5+0.5, then ((x+1)*0.5 - mean)/std, so CLIP
    sees [0.5, 1]. `clean`: (x+1)/2 in [0, 1], bicubic antialiased resize (open_clip's), then (x - mean)/std.
    """
    if mode not in INPUT_MODES:
        raise ConfigError(f"CLIP input mode {mode!r} is not one of {INPUT_MODES} (config key 'input_mode')")
    x = to_float(images)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    if mode == "paper":
        x = F.interpolate(x * 0.5 + 0.5, size=_size(size))  # F.interpolate's default: nearest
        return ((x + 1) * 0.5 - mean_t) / std_t
    x = (x.clamp(-1, 1) + 1) / 2
    x = F.interpolate(x, size=_size(size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return (x - mean_t) / std_t


class CLIPEncoderAdapter:
    """Duck-typed access to a CLIP encoder, its input transform and its provenance.

    t2igan's own `CLIPTextImageEncoder` (it has `input_mode`) takes images in [-1, 1] and transforms them
    itself: it is called with `mode=`. Any other encoder's `image_embedding` gets our `clip_input` output
    (config `encoder_transforms: true` hands it the [-1, 1] images instead). Text: `encode_captions().sentence`.
    """

    def __init__(self, encoder: Any, config: Mapping[str, Any]):
        self.encoder = encoder
        self.takes_mode = hasattr(encoder, "input_mode")
        self.encoder_transforms = bool(config.get("encoder_transforms", self.takes_mode))
        self.mode = str(config.get("input_mode") or getattr(encoder, "input_mode", None) or "paper")
        if self.mode not in INPUT_MODES:
            raise ConfigError(
                f"CLIP input mode {self.mode!r} is not one of {INPUT_MODES} (config 'input_mode')"
            )
        self.size = getattr(encoder, "image_size", None) or 224
        self.mean = tuple(getattr(encoder, "image_mean", None) or CLIP_MEAN)
        self.std = tuple(getattr(encoder, "image_std", None) or CLIP_STD)
        self.config = config

    def images(self, images: Tensor) -> Tensor:
        if not self.encoder_transforms:
            return self.encoder.image_embedding(clip_input(images, self.mode, self.size, self.mean, self.std))
        if self.takes_mode:
            return self.encoder.image_embedding(images.clamp(-1, 1), mode=self.mode)
        return self.encoder.image_embedding(images)

    def texts(self, captions: list[str]) -> Tensor:
        return self.encoder.encode_captions(list(captions)).sentence

    def provenance(self) -> dict[str, Any]:
        described = self.encoder.describe() if hasattr(self.encoder, "describe") else {}
        model = described.get("model") or getattr(self.encoder, "name", type(self.encoder).__name__)
        pretrained = described.get("pretrained")
        out = {
            "mode": self.mode,
            "extractor": f"{model} ({pretrained})" if pretrained else str(model),
            "extractor_sha256": described.get("weights_sha256")
            or getattr(self.encoder, "weights_sha256", None),
            "backend": described.get("backend", "t2igan"),
            "backend_version": package_version("open_clip_torch") if described else T2IGAN_VERSION,
            "resize": "nearest (GALIP transf_to_CLIP_input)" if self.mode == "paper" else "bicubic antialias",
            **weights_provenance(self.encoder, self.config),
        }
        return out


@torch.no_grad()
def clip_similarities(adapter: CLIPEncoderAdapter, images: Tensor, captions: Sequence[str]) -> Tensor:
    """Per-image cosine similarity between CLIP image and caption embeddings (GALIP lib/modules.py calc_clip_sim)."""
    if len(images) != len(captions):
        raise ConfigError(f"CLIP score: {len(images)} images for {len(captions)} captions")
    image_features = adapter.images(images).float()
    text_features = adapter.texts(list(captions)).float().to(image_features.device)
    return F.cosine_similarity(image_features, text_features, dim=-1).cpu()


REFERENCE_PAIRS = 2000  # real-image levels of the CLIP score: enough for ±0.002, cheap beside the metric


class CLIPScoreMetric:
    """Mean CLIP cosine similarity of each generated image and the caption it was generated from.

    Config: `input_mode` (paper|clean), `encoder_transforms` (the encoder's `image_embedding` takes [-1, 1]
    images and applies its own transform), `weights_note`, `stand_in`. Needs `encoders["clip"]`.
    """

    name = "clip_score"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        self.encoder = self.load_encoder()
        self.adapter = CLIPEncoderAdapter(self.encoder, self.config)
        self.similarities: list[Tensor] = []
        self.pairs: list[tuple[int, str]] = []  # (test image, caption) of each generated image

    def load_encoder(self) -> Any:
        return self.context.encoder("clip", self.name)

    def update(self, batch: EvalBatch) -> None:
        self.similarities.append(
            clip_similarities(self.adapter, batch.images.to(self.context.device), batch.captions)
        )
        self.pairs += [
            (sample.image_index, c) for sample, c in zip(batch.samples, batch.captions, strict=False)
        ]

    def compute(self) -> list[MetricValue]:
        if not self.similarities:
            raise ConfigError("metric 'clip_score': no generated images were evaluated")
        values = torch.cat(self.similarities).double()
        provenance = make_provenance(
            n_fake=len(values),
            seed=self.context.seed,
            scale="raw mean cosine (GALIP prints it ×100)",
            **self.adapter.provenance(),
            **self.levels(),
        )
        return [MetricValue(self.name, float(values.mean()), None, provenance, higher_is_better=True)]

    def levels(self) -> dict[str, Any]:
        """The same score of the real test images on the first REFERENCE_PAIRS (image, caption) pairs:
        with their own captions (`reference`, what a perfect generator reaches) and with the captions of
        other images (`chance`, what realistic images that ignore the text reach)."""
        real = self.context.real_images
        pairs = [(i, c) for i, c in self.pairs if i >= 0][:REFERENCE_PAIRS]
        if real is None or len(real) == 0 or len(pairs) < 2:
            return {}
        image_parts, text_parts = [], []
        for start in range(0, len(pairs), 64):  # each image and caption embedded once
            chunk = pairs[start : start + 64]
            index = [i for i, _ in chunk]
            images = to_float(real[index] if hasattr(real, "shape") else [real[i] for i in index])
            image_parts.append(self.adapter.images(images.to(self.context.device)).float())
            text_parts.append(self.adapter.texts([c for _, c in chunk]).float())
        image_features = torch.cat(image_parts)
        text_features = torch.cat(text_parts).to(image_features.device)
        others = text_features.roll(-1, dims=0)  # each image with the next pair's caption
        return {
            "reference": float(F.cosine_similarity(image_features, text_features, dim=-1).double().mean()),
            "chance": float(F.cosine_similarity(image_features, others, dim=-1).double().mean()),
            "reference_pairs": len(pairs),
        }


class CLIPRPrecisionMetric(RPrecisionMetric):
    """R-precision with CLIP embeddings instead of DAMSM's (1 true caption among 100)."""

    name = "clip_r_precision"
    encoder_name = "clip"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        super().__init__(config, context)
        self.adapter = CLIPEncoderAdapter(self.encoder, self.config)

    def image_codes(self, images: Tensor) -> Tensor:
        return self.adapter.images(images)

    def text_codes(self, captions: list[str]) -> Tensor:
        return self.adapter.texts(captions)

    def extra_provenance(self) -> dict[str, Any]:
        return self.adapter.provenance()


SECOND_CLIP_FLAG = "--second-clip"


def parse_second_clip(text: str, where: str = SECOND_CLIP_FLAG) -> dict[str, str]:
    """`MODEL` or `MODEL=WEIGHTS` (an open_clip model name; a file, or a tag such as `openai` found as
    `$T2IGAN_WEIGHTS/clip/MODEL.pt`), the config of the `clip_score_2` metric."""
    model, _, weights = str(text).partition("=")
    model, weights = model.strip(), weights.strip() or "openai"
    if not model:
        raise ConfigError(f"{where} {text!r}: expected MODEL or MODEL=WEIGHTS, e.g. ViT-L-14=/w/ViT-L-14.pt")
    return {"model": model, "pretrained": weights}


class SecondCLIPScoreMetric(CLIPScoreMetric):
    """The CLIP score under another CLIP than the one the models were trained against (config `model`,
    `pretrained`: any open_clip model whose weights are given), as its own column: GALIP and RATLIP
    optimise the first CLIP's similarity while training, and a second CLIP scores all models alike. Its
    weights are official only by the sha256 of that model's released file, where one is known."""

    name = "clip_score_2"

    def load_encoder(self) -> Any:
        from t2igan.text.clip import _looks_like_path, clip_weights_ref, load_clip
        from t2igan.weights import check_official

        settings = parse_second_clip(f"{self.config.get('model', '')}={self.config.get('pretrained', '')}")
        encoder = load_clip(settings["model"], settings["pretrained"], device=self.context.device)
        # a file is checked against OpenAI's release of the model; a tag, against that tag's file
        tag = "openai" if _looks_like_path(settings["pretrained"]) else settings["pretrained"]
        check = check_official(clip_weights_ref(settings["model"], tag), encoder.source.weights_sha256 or "")
        self.config.setdefault("weights_note", check.note)
        self.config.setdefault("stand_in", check.stand_in)
        return encoder
