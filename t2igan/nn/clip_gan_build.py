"""Building the CLIP-based GAN that GALIP and RATLIP share from a preset config, and loading the official
GALIP/RATLIP checkpoints into it (module and key names as tobran/GALIP code/models/GALIP.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.clip_gan import (
    CLIPGANDiscriminator,
    CLIPGANGenerator,
    CLIPGANModel,
    ConvFactory,
    FusionFactory,
    MateC,
    MateD,
)

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry


def check_encoder_sizes(config: Mapping[str, Any], encoder: Any, where: str) -> None:
    """Paper presets pin the CLIP they were written for; a differently sized encoder fails naming the key.
    `None` values (the `tiny` preset) size the model from whatever encoder it is given."""
    actual = {
        "cond_dim": encoder.sentence_dim,
        "clip_width": encoder.image_width,
        "clip_grid": encoder.grid_size,
        "clip_layers": tuple(encoder.layers),
        "num_prompts": len(encoder.prompt_blocks),
    }
    name = getattr(getattr(encoder, "source", None), "name", "?")
    for key, value in actual.items():
        expected = config.get(key)
        if expected is not None and (tuple(expected) if key == "clip_layers" else expected) != value:
            raise ConfigError(
                f"{where}: {key}={expected!r} but the CLIP encoder given ({name}) "
                f"has {value!r}; use the preset's CLIP ({config.get('clip_model')}) or the `tiny` preset"
            )
    embed = int(encoder.model.visual.proj.shape[1])
    if embed != encoder.sentence_dim:
        raise ConfigError(
            f"{where}: the CLIP image embedding is {embed}-d but sentences are {encoder.sentence_dim}-d; "
            "the CLIP-similarity term of the G loss needs them equal"
        )


def stand_in_clip(config: Mapping[str, Any], device: torch.device) -> Any:
    """A randomly initialised CLIP of the preset's `clip_model`, for building without a text encoder
    (`t2igan models` counts parameters on the meta device)."""
    from open_clip.model import CLIP

    from t2igan.text.clip import CLIPTextImageEncoder, model_config

    cfg = model_config(str(config["clip_model"]))
    with torch.device(device):
        model = CLIP(
            embed_dim=int(cfg["embed_dim"]),
            vision_cfg=dict(cfg["vision_cfg"]),
            text_cfg=dict(cfg["text_cfg"]),
        )
    return CLIPTextImageEncoder(model, config.get("clip_layers")).freeze()


# ---------------------------------------------------------------------------------------------- build

# (cond_dim, noise_dim) -> (M_Block fusion, G_Block fusion, module shared by the blocks or None)
FusionPlan = Callable[[int, int], tuple[FusionFactory, FusionFactory, nn.Module | None]]


def registry_fusion(registry: Registry, name: str, shared: nn.Module | None) -> FusionFactory:
    """A fusion block registered by name (DF-GAN's `dfblock`, RAT-GAN's `rat`, a third party's)."""
    spec = registry.fusion_block(name)
    return lambda cond_dim, channels: spec.block(cond_dim, channels, shared=shared)


def assemble(
    config: Mapping[str, Any],
    context: Any,
    fusions: FusionPlan,
    mapper_conv2: ConvFactory,
    g_conv: ConvFactory,
    where: str,
) -> CLIPGANModel:
    """G, D and losses from a preset config, sized from the CLIP in `context.text_encoder` (or a random
    stand-in of `clip_model` when there is none, e.g. for parameter counts on the meta device)."""
    encoder = context.text_encoder
    if encoder is None:
        encoder = stand_in_clip(config, context.device)
    elif not hasattr(encoder, "map_with_prompts"):
        raise ConfigError(f"{where} needs the `clip` text encoder, got a {type(encoder).__name__}")
    check_encoder_sizes(config, encoder, where)
    sentence_dim, noise_dim = encoder.sentence_dim, int(config["noise_dim"])
    mapper_fusion, g_fusion, shared = fusions(noise_dim + sentence_dim, noise_dim)
    generator = CLIPGANGenerator(
        encoder,
        int(config["nf"]),
        noise_dim,
        sentence_dim,
        int(config["image_size"]),
        int(config["output_size"] or encoder.image_size),
        int(config["code_channels"]),
        int(config["mid_channels"]),
        int(config["map_blocks"]),
        mapper_fusion,
        g_fusion,
        mapper_conv2,
        g_conv,
        shared,
    )
    d_channels = int(config["d_channels"])
    discriminator = CLIPGANDiscriminator(
        encoder,
        MateD(encoder.image_width, len(encoder.layers), d_channels),
        MateC(d_channels, sentence_dim, int(config["c_hidden"]), encoder.grid_size),
    )
    model = CLIPGANModel(
        generator,
        discriminator,
        encoder,
        sim_weight=float(config["sim_weight"]),
        magp_weight=float(config["magp_weight"]),
        magp_power=float(config["magp_power"]),
    )
    return model.to(context.device)


# -------------------------------------------------------------------------------- official checkpoints

# official network -> (our part, prefix of its keys there); code/lib/modules.py save_model writes
# {'model': {'netG', 'netD', 'netC'}, 'optimizers': ..., 'epoch': ...}
OFFICIAL_PARTS: dict[str, tuple[str, str]] = {
    "netG": ("generator", ""),
    "netD": ("discriminator", "backbone."),
    "netC": ("discriminator", "head."),
}
OFFICIAL_CLIP_PREFIX = "mapping.CLIP_ViT."  # netG's copy of the frozen CLIP visual weights
CLIP_RTOL = 2e-3  # the copy may be fp16 (clip.load on CUDA): half precision keeps ~3 significant digits


def convert_official_checkpoint(
    path_or_state: Any, what: str, clip: Any = None, model: Any = None
) -> dict[str, dict[str, Tensor]]:
    """`{"generator": ..., "discriminator": ...}` from an official file or its loaded dict.

    netG's `mapping.CLIP_ViT.*` keys (the frozen CLIP) are dropped: our checkpoints do not hold CLIP.
    With `clip` (a CLIPTextImageEncoder) they are first compared with its visual weights, and a
    different CLIP is an error listing the keys that differ. With `model` (a CLIPGANModel) a summary of
    them is kept on it (`official_clip_copy`), so that the CLIP found when the converted checkpoint is
    loaded later can be checked against it. DDP's `module.` prefix is stripped.
    """
    from t2igan.errors import T2IGanError
    from t2igan.weights import load_state_dict_file

    if isinstance(path_or_state, Mapping):
        checkpoint, source = path_or_state, f"{what} state dict"
    else:
        checkpoint, source = load_state_dict_file(path_or_state, what), f"{what} {path_or_state}"
    nets = checkpoint.get("model", checkpoint)
    if not isinstance(nets, Mapping) or not any(name in nets for name in OFFICIAL_PARTS):
        found = sorted(nets) if isinstance(nets, Mapping) else type(nets).__name__
        raise T2IGanError(f"{source}: expected {{'model': {{'netG', 'netD', 'netC'}}}}, found {found}")
    converted: dict[str, dict[str, Tensor]] = {}
    for name, (part, prefix) in OFFICIAL_PARTS.items():
        if name not in nets:
            continue
        state = dict(nets[name])
        if state and all(key.startswith("module.") for key in state):
            state = {key.removeprefix("module."): value for key, value in state.items()}
        frozen = {
            k[len(OFFICIAL_CLIP_PREFIX) :]: v for k, v in state.items() if k.startswith(OFFICIAL_CLIP_PREFIX)
        }
        if frozen and clip is not None:
            check_clip_copy(frozen, clip, source)
        if frozen and model is not None:
            model.official_clip_copy = clip_copy_summary(frozen)
        kept = {prefix + k: v for k, v in state.items() if not k.startswith(OFFICIAL_CLIP_PREFIX)}
        converted.setdefault(part, {}).update(kept)
    return converted


def check_clip_copy(frozen: Mapping[str, Tensor], clip: Any, source: str) -> None:
    """The CLIP visual weights a netG carries must be those of the CLIP we run with."""
    from t2igan.errors import T2IGanError

    ours = clip.model.visual.state_dict()
    missing = sorted(set(frozen) - set(ours))
    differ = sorted(
        key
        for key in set(frozen) & set(ours)
        if frozen[key].shape != ours[key].shape
        or not torch.allclose(frozen[key].float(), ours[key].float().cpu(), rtol=CLIP_RTOL, atol=1e-5)
    )
    if missing or differ:
        raise T2IGanError(
            f"{source}: its {OFFICIAL_CLIP_PREFIX}* weights are not those of the CLIP given "
            f"({getattr(clip.source, 'pretrained', '?')}): unknown keys {missing[:10]}, different values or "
            f"shapes at {differ[:10]} ({len(differ)} in all); load the CLIP the checkpoint was trained with "
            "(OpenAI ViT-B/32)"
        )


def clip_copy_summary(frozen: Mapping[str, Tensor]) -> dict[str, list[float]]:
    """Per key of netG's CLIP copy: [sum, L2 norm, number of values], in float64; small enough for a
    checkpoint's metadata, and fp16 copies of one CLIP agree on it within CLIP_RTOL."""
    return {
        key: [float(value.double().sum()), float(value.double().norm()), value.numel()]
        for key, value in sorted(frozen.items())
    }


def check_clip_summary(summary: Mapping[str, Any], clip: Any, source: str) -> None:
    """The CLIP we run with must be the one whose copy a converted netG carried (`clip_copy_summary`).

    The norm must agree within CLIP_RTOL, the sum within CLIP_RTOL·√n·norm (the most fp16 rounding can
    move it); another CLIP (random, ViT-B/16, another fine-tune) misses by orders of magnitude."""
    from t2igan.errors import T2IGanError

    ours = clip.model.visual.state_dict()
    differ = []
    for key, (total, norm, count) in summary.items():
        value = ours.get(key)
        if value is None or value.numel() != count:
            differ.append(key)
            continue
        value = value.detach().double().cpu()
        slack = CLIP_RTOL * max(norm, 1e-12)
        if abs(float(value.norm()) - norm) > slack or abs(float(value.sum()) - total) > slack * count**0.5:
            differ.append(key)
    if differ:
        raise T2IGanError(
            f"{source}: converted from an official netG whose {OFFICIAL_CLIP_PREFIX}* weights are not those of "
            f"the CLIP found now ({getattr(clip.source, 'pretrained', '?')}): {len(differ)} of {len(summary)} "
            f"tensors differ, e.g. {differ[:5]}; load the CLIP the checkpoint was trained with (OpenAI "
            "ViT-B/32: $T2IGAN_WEIGHTS or the plan's [encoders])"
        )


def load_official(model: CLIPGANModel, path_or_state: Any, what: str, check_clip: bool = True) -> None:
    """Load an official checkpoint into `model`: strict on everything but the frozen CLIP."""
    from t2igan.weights import check_state_dict_keys

    converted = convert_official_checkpoint(path_or_state, what, model.clip if check_clip else None)
    for part, state in converted.items():
        module = getattr(model, part)
        expected = {k: v for k, v in module.state_dict().items() if not k.startswith(OFFICIAL_CLIP_PREFIX)}
        check_state_dict_keys(expected, state, f"{what} ({part})")
        module.load_state_dict(state, strict=False)
