"""CLIP through open_clip, exposing the exact features GALIP and RATLIP take from OpenAI's ViT-B/32
(text, patch-token maps, projected CLS, the prompted ViT pass of the mapper), and its weights.

Layout note. The official code (tobran/GALIP code/models/GALIP.py) drives the OpenAI `clip` package's
modules; open_clip's `ViT-B-32` has the same parameter names and shapes (state dicts load unchanged:
`visual.{conv1,class_embedding,positional_embedding,ln_pre,transformer.resblocks.i.*,ln_post,proj}`,
`token_embedding`, `positional_embedding`, `transformer.resblocks.i.*`, `ln_final`, `text_projection`,
`logit_scale`; both pack q, k, v into one `attn.in_proj_weight` (3D, D) of nn.MultiheadAttention). What
differs: OpenAI's resblocks take sequence-first tensors (L, N, D), open_clip 3.x's take batch-first
(`transformer.batch_first`); OpenAI's TorchScript state dict adds `input_resolution`, `context_length`
and `vocab_size` entries (dropped here); OpenAI's ViTs use QuickGELU, which open_clip builds only when
asked (`quick_gelu=True`). Our API is batch-first; blocks are fed in whatever layout they expect.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP
from open_clip.transformer import VisionTransformer
from torch import Tensor

from t2igan.atomic import torch_save_atomic
from t2igan.errors import ConfigError, T2IGanError, UnknownNameError
from t2igan.nn.interfaces import TextEncoder, TextFeatures
from t2igan.weights import (
    CheckedWeights,
    WeightsCheck,
    WeightsRef,
    check_official,
    check_state_dict_keys,
    load_state_dict_file,
    plan_setting,
    resolve_weights,
    sha256_file,
)

INPUT_MODES = ("paper", "clean")
OFFICIAL_LAYERS = (1, 4, 8)  # GALIP code/models/GALIP.py CLIP_IMG_ENCODER: selected = [1,4,8] of 12 blocks
CONFIG_DIR = Path(__file__).with_name("clip_configs")
CHECKPOINT_FORMAT = "t2igan.clip"
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
_SUPPORTED_CONFIG_KEYS = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}


# ---------------------------------------------------------------------------------------------------
# Input transform


def to_clip_input(images: Tensor, mode: str = "paper", size: int = 224) -> Tensor:
    """Map generator images in [-1, 1] (B, 3, H, W) to normalised CLIP input (B, 3, size, size).

    "paper" copies GALIP's `transf_to_CLIP_input` (code/lib/utils.py, and CLIP_IMG_ENCODER): nearest
    resize of img*0.5+0.5, then ((x+1)*0.5 - mean)/std, so CLIP sees values in [0.5, 1] — the quirk the
    released numbers were produced with. "clean" maps [-1, 1] to [0, 1] once and resizes as open_clip's
    preprocessing does on tensors (shortest side to `size`, bicubic with antialiasing, centre crop).
    The official size is 224 (ViT-B/32); we use the model's own input size. Nothing is clamped, so
    gradients reach unbounded generator outputs (GALIP's G has no tanh).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ConfigError(f"CLIP input must be (B, 3, H, W) images, got shape {tuple(images.shape)}")
    # open_clip's OpenAI mean/std are the numbers in GALIP code/lib/utils.py transf_to_CLIP_input
    mean = images.new_tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    if mode == "paper":
        x = F.interpolate(images * 0.5 + 0.5, size=(size, size))
        return ((x + 1) * 0.5 - mean) / std
    if mode == "clean":
        return (_resize_centre_crop((images + 1) * 0.5, size) - mean) / std
    raise ConfigError(f"CLIP input_mode must be one of {INPUT_MODES}, got {mode!r}")


def _resize_centre_crop(x: Tensor, size: int) -> Tensor:
    height, width = x.shape[-2:]
    if (height, width) == (size, size):
        return x
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return x[..., top : top + size, left : left + size]


def default_layers(num_blocks: int) -> tuple[int, ...]:
    """Blocks whose patch tokens feed GALIP's discriminator: the official (1, 4, 8) for a 12-block ViT;
    otherwise an early, a middle and a late block (1, n//2, n-1), e.g. (1, 2, 3) for 4 blocks."""
    if num_blocks == 12:
        return OFFICIAL_LAYERS
    if num_blocks < 4:
        raise ConfigError(f"a ViT with {num_blocks} blocks is too shallow: give `layers` explicitly")
    return (1, num_blocks // 2, num_blocks - 1)


# ---------------------------------------------------------------------------------------------------
# The encoder


@dataclass(frozen=True)
class CLIPSource:
    """Where an encoder's weights came from, for run records and metric provenance."""

    name: str
    pretrained: str  # "openai", another tag, a path, or "random"
    weights_file: str | None = None
    weights_sha256: str | None = None
    model_config: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)


class CLIPTextImageEncoder(CheckedWeights, TextEncoder):
    """One open_clip CLIP seen through the interfaces GALIP/RATLIP need.

    Text: `tokenize`, `encode` (sentence = ln_final(x)[eot] @ text_projection, not normalised; words =
    ln_final(x) channels-first; mask True at padding). Image (inputs in [-1, 1], transformed with
    `input_mode`): `image_features` (patch maps after `layers` + projected CLS), `image_embedding`.
    Mapper: `visual_tokens`, `run_visual_blocks` (prompts appended at chosen blocks), `map_with_prompts`.
    """

    def __init__(
        self,
        model: CLIP,
        layers: Sequence[int] | None = None,
        input_mode: str = "paper",
        source: CLIPSource | None = None,
    ):
        super().__init__()
        _check_supported(model)
        self.model = model
        visual = model.visual
        self.image_size = int(visual.image_size[0])
        self.grid_size = int(visual.grid_size[0])
        self.image_width = int(visual.transformer.width)
        self.num_visual_blocks = len(visual.transformer.resblocks)
        self.context_length = int(model.context_length)
        self.word_dim = int(model.transformer.width)
        self.sentence_dim = int(model.text_projection.shape[1])
        self.layers = self._check_blocks(
            "layers", default_layers(self.num_visual_blocks) if layers is None else layers
        )
        if input_mode not in INPUT_MODES:
            raise ConfigError(f"CLIP input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.input_mode = input_mode
        self.source = source or CLIPSource(name="custom", pretrained="random")

    @property
    def prompt_blocks(self) -> tuple[int, ...]:
        """GALIP appends a prompt at blocks 1..8 (CLIP_Mapper: selected = [1..8]); generalised as 1..max(layers)."""
        return tuple(range(1, max(self.layers) + 1))

    def describe(self) -> dict[str, Any]:
        """Everything that changes a number computed with this encoder (for records and cache keys)."""
        return {
            "backend": "open_clip",
            "model": self.source.name,
            "pretrained": self.source.pretrained,
            "weights_file": self.source.weights_file,
            "weights_sha256": self.source.weights_sha256,
            "input_mode": self.input_mode,
            "layers": list(self.layers),
            "image_size": self.image_size,
            "context_length": self.context_length,
        }

    @property
    def weights_check(self) -> WeightsCheck:
        """Whether these are OpenAI's ViT-B/32 weights, the CLIP the papers' CLIP scores used, by sha256."""
        return check_openai_vit_b_32(self.source)

    def freeze(self) -> CLIPTextImageEncoder:
        self.requires_grad_(False)
        return self.eval()

    # --- text ---------------------------------------------------------------------------------

    def tokenize(self, captions: list[str]) -> dict[str, Tensor]:
        """open_clip's BPE tokenizer (the OpenAI vocabulary); long captions truncated, last token EOT."""
        return {"tokens": _tokenizer()(list(captions), context_length=self.context_length)}

    def encode(self, tokens: Mapping[str, Tensor]) -> TextFeatures:
        ids = tokens["tokens"].to(self.model.token_embedding.weight.device).long()
        model = self.model
        dtype = model.transformer.get_cast_dtype()
        length = ids.shape[1]  # the context length, or fewer tokens (see `trim_tokens`)
        x = model.token_embedding(ids).to(dtype) + model.positional_embedding[:length].to(dtype)
        mask = None if model.attn_mask is None else model.attn_mask[:length, :length]
        x = model.ln_final(model.transformer(x, attn_mask=mask))  # takes (N, L, D) either way
        eot = ids.argmax(dim=-1)  # the EOT id is the largest in the vocabulary, as the official code assumes
        sentence = x[torch.arange(x.shape[0], device=x.device), eot] @ model.text_projection
        positions = torch.arange(ids.shape[1], device=ids.device)
        return TextFeatures(
            sentence=sentence.float(),
            words=x.transpose(1, 2).float(),
            mask=positions[None, :] > eot[:, None],
        )

    def trim_tokens(self, tokens: Tensor) -> Tensor:
        """`tokens` cut after the batch's last EOT. The text transformer is causal, so no token sees the
        padding after it: the sentence embedding (at EOT) and every word feature up to EOT are the same as
        with the full context, for less work (what contrastive pre-training uses). Without a causal mask
        the padding takes part in attention, and the tokens come back whole."""
        if self.model.attn_mask is None or tokens.shape[1] == 0:
            return tokens
        return tokens[:, : int(tokens.argmax(dim=-1).max()) + 1]

    # --- image --------------------------------------------------------------------------------

    def to_input(self, images: Tensor, mode: str | None = None) -> Tensor:
        return to_clip_input(images, mode or self.input_mode, self.image_size)

    def image_features(
        self, images: Tensor, layers: Sequence[int] | None = None, mode: str | None = None
    ) -> tuple[Tensor, Tensor]:
        """GALIP's CLIP_IMG_ENCODER: ((B, len(layers), width, grid, grid) patch maps, (B, embed) CLS)."""
        chosen = self.layers if layers is None else self._check_blocks("layers", layers)
        tokens, captured = self.run_visual_blocks(self._patch_tokens(images, mode), capture=chosen)
        maps = torch.stack([self.tokens_to_map(t) for t in captured], dim=1)
        return maps.to(images.dtype), self._embed_cls(tokens).to(images.dtype)

    def image_embedding(self, images: Tensor, mode: str | None = None) -> Tensor:
        """The projected CLS (open_clip's encode_image, unnormalised) of images in [-1, 1]."""
        tokens, _ = self.run_visual_blocks(self._patch_tokens(images, mode))
        return self._embed_cls(tokens).to(images.dtype)

    def visual_tokens(self, grid_map: Tensor) -> Tensor:
        """(B, width, grid, grid) patch embeddings -> (B, 1 + grid², width): CLS, positions, ln_pre."""
        visual = self.model.visual
        x = grid_map.to(visual.conv1.weight.dtype).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        return visual.ln_pre(x)

    def run_visual_blocks(
        self,
        tokens: Tensor,
        prompts_by_block: Mapping[int, Tensor] | None = None,
        capture: Sequence[int] = (),
    ) -> tuple[Tensor, list[Tensor]]:
        """Run every ViT block on batch-first tokens (B, L, width).

        Before block i, `prompts_by_block[i]` ((B, width) or (B, P, width)) is appended to the sequence
        and removed after it, as GALIP's CLIP_Mapper does. Returns the final tokens and those after each
        block in `capture` (full sequences, CLS first).
        """
        prompts = dict(prompts_by_block or {})
        self._check_blocks("prompt blocks", prompts)
        transformer = self.model.visual.transformer
        seq_first = not getattr(transformer, "batch_first", True)
        length, captured = tokens.shape[1], []
        for index, block in enumerate(transformer.resblocks):
            x = tokens
            if index in prompts:
                prompt = prompts[index].to(tokens.dtype).reshape(tokens.shape[0], -1, tokens.shape[2])
                x = torch.cat([tokens, prompt], dim=1)
            x = block(x.transpose(0, 1)).transpose(0, 1) if seq_first else block(x)
            tokens = x[:, :length]
            if index in capture:
                captured.append(tokens)
        return tokens, captured

    def map_with_prompts(
        self, grid_map: Tensor, prompts: Tensor, prompt_blocks: Sequence[int] | None = None
    ) -> Tensor:
        """GALIP's CLIP_Mapper: the frozen ViT on a (B, width, grid, grid) map with prompts (B, P, width)
        inserted at `prompt_blocks` (default `self.prompt_blocks`); returns the patch map after all blocks."""
        blocks = self.prompt_blocks if prompt_blocks is None else tuple(prompt_blocks)
        if prompts.dim() != 3 or prompts.shape[1] != len(blocks):
            raise ConfigError(
                f"prompts must be (B, {len(blocks)}, {self.image_width}) for prompt blocks {blocks}, "
                f"got shape {tuple(prompts.shape)}"
            )
        by_block = {block: prompts[:, i] for i, block in enumerate(blocks)}
        tokens, _ = self.run_visual_blocks(self.visual_tokens(grid_map), by_block)
        return self.tokens_to_map(tokens).to(grid_map.dtype)

    def tokens_to_map(self, tokens: Tensor) -> Tensor:
        """(B, 1 + grid², width) -> patch tokens as a (B, width, grid, grid) map (CLS dropped)."""
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, self.grid_size, self.grid_size)

    def _patch_tokens(self, images: Tensor, mode: str | None) -> Tensor:
        visual = self.model.visual
        pixels = self.to_input(images, mode).to(visual.conv1.weight.dtype)
        return self.visual_tokens(visual.conv1(pixels))

    def _embed_cls(self, tokens: Tensor) -> Tensor:
        visual = self.model.visual
        return visual.ln_post(tokens[:, 0]) @ visual.proj

    def _check_blocks(self, what: str, blocks: Sequence[int] | Mapping[int, Any]) -> tuple[int, ...]:
        chosen = tuple(int(b) for b in blocks)
        bad = [b for b in chosen if not 0 <= b < self.num_visual_blocks]
        if bad or (what == "layers" and not chosen):
            raise ConfigError(
                f"CLIP {what} {list(chosen)}: expected non-empty block indices in "
                f"0..{self.num_visual_blocks - 1} of this {self.num_visual_blocks}-block ViT"
            )
        return chosen


def _check_supported(model: Any) -> None:
    visual = getattr(model, "visual", None)
    problems = []
    if not isinstance(model, CLIP):
        problems.append(f"a {type(model).__name__} (expected open_clip.model.CLIP)")
    elif not isinstance(visual, VisionTransformer):
        problems.append(f"a {type(visual).__name__} image tower (expected a ViT)")
    elif visual.attn_pool is not None or visual.pool_type != "tok" or visual.final_ln_after_pool:
        problems.append("a ViT that is not CLS-pooled with ln_post before pooling")
    elif visual.proj is None or not isinstance(model.text_projection, torch.nn.Parameter):
        problems.append("a CLIP without projection matrices on both towers")
    elif model.text_pool_type != "argmax":
        problems.append(f"text pooling {model.text_pool_type!r} (expected 'argmax' at the EOT token)")
    if problems:
        raise ConfigError(
            f"unsupported CLIP model: {problems[0]}; GALIP's features need an OpenAI-style ViT CLIP"
        )


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


# ---------------------------------------------------------------------------------------------------
# Configs and construction


def list_small_configs() -> list[str]:
    """Names of the project's small CLIP configs (t2igan/text/clip_configs/*.json): `clip-small` for
    shapes (32 px, patch 8 -> 4x4 grid, ViT 4 x 128, text 2 x 64 (a narrower text tower learns faster
    here), both with MLPs 2x wide rather than 4x (as good and cheaper: see clip_pretrain), embed 128, context
    27 tokens: the longest `shapes` caption, checked by tests/data/test_shapes.py) and `clip-tiny` for tests
    (ViT 4 x 64, text 2 x 64, embed 64)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def model_config(name: str) -> dict[str, Any]:
    """The open_clip-style config (embed_dim, vision_cfg, text_cfg, ...) of one of ours or open_clip's."""
    ours = CONFIG_DIR / f"{name}.json"
    if ours.is_file():
        return json.loads(ours.read_text())
    import open_clip

    found = open_clip.get_model_config(name)
    if found is None:
        raise UnknownNameError("CLIP model", name, list_small_configs() + open_clip.list_models())
    return json.loads(json.dumps(found))  # a deep copy: open_clip hands out its registry's dicts


def build_open_clip_model(
    config: Mapping[str, Any],
    quick_gelu: bool | None = None,
    state: Mapping[str, Tensor] | None = None,
    source: str = "CLIP weights",
) -> CLIP:
    """An open_clip CLIP (fp32, eval mode) from a config: random weights, or `state` loaded strictly.

    With a state dict the model is built on the meta device and the tensors assigned, which skips a
    random initialisation that would be thrown away (2.5 s for ViT-B-32 on CPU)."""
    unknown = sorted(set(config) - _SUPPORTED_CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"CLIP config keys {unknown} are not supported; expected {sorted(_SUPPORTED_CONFIG_KEYS)}"
        )
    gelu = bool(config.get("quick_gelu", False)) if quick_gelu is None else quick_gelu
    kwargs = dict(
        embed_dim=int(config["embed_dim"]),
        vision_cfg=dict(config["vision_cfg"]),
        text_cfg=dict(config["text_cfg"]),
        quick_gelu=gelu,
    )
    if state is None:
        return CLIP(**kwargs).eval()
    with torch.device("meta"):
        model = CLIP(**kwargs)
    check_state_dict_keys(model.state_dict(), state, source)
    model.load_state_dict(state, assign=True)
    # the one non-persistent buffer: the text tower's causal mask (-inf above the diagonal)
    if model.attn_mask is not None:
        length = model.context_length
        model.attn_mask = torch.full((length, length), float("-inf")).triu_(1)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise T2IGanError(f"{source}: tensors {left[:5]} were not set when building the CLIP model")
    return model.eval()


def openai_config(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Infer the config of an OpenAI-layout ViT CLIP state dict (as OpenAI's clip/model.py build_model
    does: heads = width // 64 on both towers; QuickGELU)."""
    if "visual.proj" not in state:
        raise ConfigError("only ViT CLIPs are supported (no 'visual.proj' key: a ResNet CLIP?)")

    def count(prefix: str) -> int:
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        return len({m.group(1) for k in state if (m := pattern.match(k))})

    conv = state["visual.conv1.weight"]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = int(state["ln_final.weight"].shape[0])
    return {
        "embed_dim": int(state["text_projection"].shape[1]),
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": int(conv.shape[-1]) * grid,
            "layers": count("visual.transformer.resblocks."),
            "width": int(conv.shape[0]),
            "head_width": 64,
            "patch_size": int(conv.shape[-1]),
        },
        "text_cfg": {
            "context_length": int(state["positional_embedding"].shape[0]),
            "vocab_size": int(state["token_embedding.weight"].shape[0]),
            "width": text_width,
            "heads": text_width // 64,
            "layers": count("transformer.resblocks."),
        },
    }


# ---------------------------------------------------------------------------------------------------
# Weights


def check_openai_vit_b_32(source: CLIPSource) -> WeightsCheck:
    """OpenAI's ViT-B/32 file is recognised by its sha256, whatever the file or the tag is called."""
    if not source.weights_sha256:
        return WeightsCheck(
            False, f"CLIP {source.name} with {source.pretrained} weights (not OpenAI ViT-B/32)"
        )
    return check_official(
        WeightsRef("clip", "OpenAI ViT-B/32", "openai", "clip/ViT-B-32.pt"), source.weights_sha256
    )


def clip_weights_ref(name: str, tag: str) -> WeightsRef:
    """OpenAI weights are `$T2IGAN_WEIGHTS/clip/<name>.pt` (OpenAI's own file, e.g. clip/ViT-B-32.pt);
    any other tag is `clip/<name>-<tag>.pt` (e.g. clip/clip-small-shapes.pt, a checkpoint of ours)."""
    import open_clip

    url = open_clip.pretrained.get_pretrained_url(name, tag) if tag else ""
    return WeightsRef(
        kind="clip",
        name=name,
        tag=tag,
        filename=f"clip/{name}.pt" if tag == "openai" else f"clip/{name}-{tag}.pt",
        setting=plan_setting("clip", "pretrained"),
        origin=url or "",
    )


def _open_clip_download(name: str, tag: str) -> Any:
    import open_clip

    cfg = open_clip.pretrained.get_pretrained_cfg(name, tag)
    if not cfg:
        return None

    def download() -> str:
        # prefer_hf_hub=False: fetch the file OpenAI published (a TorchScript archive), not a re-export
        target = open_clip.pretrained.download_pretrained(cfg, prefer_hf_hub=False)
        if not target:
            raise T2IGanError(f"open_clip has no download for {name}/{tag}")
        return target

    return download


@dataclass
class ClipWeights:
    """A weights file read into memory: its state dict and, for our checkpoints, config and metadata."""

    state: dict[str, Tensor]
    kind: str  # "torchscript" | "t2igan" | "state_dict"
    config: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    openai_keys: bool = False  # a state dict with the scalars of OpenAI's archive (input_resolution, ...)


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())


def read_clip_weights(path: str | os.PathLike) -> ClipWeights:
    """Read OpenAI's TorchScript archive, a checkpoint of ours, or a plain state dict.

    TorchScript archives are loaded with torch.jit.load, which does not unpickle arbitrary Python
    objects (only TorchScript code and tensors); everything else is read with weights_only=True
    Only the tensors are kept.
    """
    path = Path(path)
    if is_torchscript_archive(path):
        with warnings.catch_warnings():  # torch.jit is deprecated, but OpenAI's release is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
        return ClipWeights(_clean_state(state, path), "torchscript")
    raw = load_state_dict_file(path, what="CLIP weights")
    if isinstance(raw, Mapping) and raw.get("format") == CHECKPOINT_FORMAT:
        meta = {k: raw.get(k) for k in ("name", "layers", "input_mode", "stats")}
        return ClipWeights(_clean_state(raw["state_dict"], path), "t2igan", dict(raw["model_config"]), meta)
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    openai_keys = isinstance(raw, Mapping) and any(key in raw for key in _OPENAI_EXTRA_KEYS)
    return ClipWeights(_clean_state(raw, path), "state_dict", openai_keys=openai_keys)


def weights_architecture(
    name: str, weights: ClipWeights, tag: str, quick_gelu: bool | None, file: str | os.PathLike
) -> dict[str, Any]:
    """The model config a weights file is for, taken from the file whichever way it was given: our
    checkpoints carry theirs, OpenAI's release (its TorchScript archive, or a state dict with its scalars)
    is QuickGELU, and a plain state dict follows the open_clip name's config, which must say which
    activation it uses (`-quickgelu` names do) unless `quick_gelu` does; otherwise it is ambiguous and
    refused: built with the other activation, it runs and gives other numbers (GALIP's output by 1.5e-4)."""
    if weights.kind == "t2igan":
        config, origin = dict(weights.config or {}), "the checkpoint's own config"
    elif weights.kind == "torchscript" or weights.openai_keys or tag == "openai":
        config, origin = openai_config(weights.state), "OpenAI's release format"
    else:
        config = model_config(name)
        if quick_gelu is not None:
            return {**config, "quick_gelu": bool(quick_gelu)}
        if "quick_gelu" in config:
            return config
        import open_clip

        renamed = (
            f", or name the model {name}-quickgelu" if open_clip.get_model_config(f"{name}-quickgelu") else ""
        )
        raise ConfigError(
            f"CLIP weights {file}: a plain state dict does not say which activation its model uses (OpenAI's "
            f"CLIPs: QuickGELU; open_clip's own: GELU), and the {name!r} config does not either; set "
            f"quick_gelu = true or false under [encoders.clip] in a plan file (Python: quick_gelu=...){renamed}"
        )
    stated = bool(config.get("quick_gelu", False))
    if quick_gelu is not None and bool(quick_gelu) != stated:
        raise ConfigError(
            f"CLIP weights {file}: quick_gelu={bool(quick_gelu)} contradicts {origin}, which is "
            f"{'QuickGELU' if stated else 'GELU'}; leave quick_gelu out"
        )
    return config


def _clean_state(state: Any, path: Path) -> dict[str, Tensor]:
    if not isinstance(state, Mapping):
        raise T2IGanError(f"CLIP weights {path}: expected a state dict, found a {type(state).__name__}")
    cleaned = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key in _OPENAI_EXTRA_KEYS or not isinstance(value, Tensor):
            continue
        cleaned[key] = value.float() if value.is_floating_point() else value  # OpenAI's file is fp16
    return cleaned


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith((".pt", ".pth", ".bin"))


def load_clip(
    name: str = "ViT-B-32",
    pretrained: str | os.PathLike | None = "openai",
    device: torch.device | str = "cpu",
    layers: Sequence[int] | None = None,
    input_mode: str | None = None,
    quick_gelu: bool | None = None,
) -> CLIPTextImageEncoder:
    """A frozen CLIPTextImageEncoder.

    `pretrained`: None (random weights, for shapes and tests); a tag ("openai", or the tag of one of
    our checkpoints, e.g. "shapes"), resolved as `clip_weights_ref` says — explicit path, then
    $T2IGAN_WEIGHTS, then plugins, then open_clip's own download (online only); or a local file.
    OpenAI's TorchScript archive is read with torch.jit.load (no arbitrary unpickling); other files
    with weights_only=True. `input_mode` defaults to the mode our checkpoint was trained with, else
    "paper" (GALIP's transform, what OpenAI-weight numbers in the papers used). `quick_gelu` defaults
    to True for OpenAI weights and to the config's value otherwise.
    """
    if pretrained is None:
        config = model_config(name)
        model = build_open_clip_model(config, quick_gelu)
        source = CLIPSource(name=name, pretrained="random", model_config=config)
        return CLIPTextImageEncoder(model, layers, input_mode or "paper", source).to(device).freeze()
    text = str(pretrained)
    if _looks_like_path(text) or Path(text).expanduser().is_file():
        local = WeightsRef("clip", name, "local", filename=Path(text).name)
        file = resolve_weights(local, path=text)
    else:
        file = resolve_weights(clip_weights_ref(name, text), download=_open_clip_download(name, text))
    weights = read_clip_weights(file)
    config = weights_architecture(name, weights, text, quick_gelu, file)
    model = build_open_clip_model(config, None, weights.state, f"CLIP weights {file}")
    source = CLIPSource(
        name=str(weights.meta.get("name") or name),
        pretrained=text,
        weights_file=str(file),
        weights_sha256=sha256_file(file),
        model_config=config,
        stats=dict(weights.meta.get("stats") or {}),
    )
    mode = input_mode or weights.meta.get("input_mode") or "paper"
    encoder = CLIPTextImageEncoder(model, layers or weights.meta.get("layers"), mode, source)
    return encoder.to(device).freeze()


def save_clip_checkpoint(
    path: str | os.PathLike, encoder: CLIPTextImageEncoder, stats: Mapping[str, Any] | None = None
) -> Path:
    """Our checkpoint: state dict + config + layers + input mode + stats, readable with weights_only=True,
    written atomically."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "name": encoder.source.name,
        "model_config": json.loads(json.dumps(dict(encoder.source.model_config))),
        "layers": list(encoder.layers),
        "input_mode": encoder.input_mode,
        "stats": json.loads(json.dumps(dict(stats if stats is not None else encoder.source.stats))),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.model.state_dict().items()},
    }
    return torch_save_atomic(payload, path)


def build_clip(config: Mapping[str, Any], context: Any = None) -> CLIPTextImageEncoder:
    """Builder for `TextEncoderSpec(name="clip", build=build_clip)`.

    Config keys: `model` (open_clip name such as "ViT-B-32", or one of ours: clip-small, clip-tiny),
    `pretrained` ("openai", a tag of ours, a path, or None for random weights), `layers` (feature
    blocks, default (1, 4, 8) on 12 blocks), `input_mode` ("paper" | "clean"), `quick_gelu`.
    """
    known = {"model", "pretrained", "layers", "input_mode", "quick_gelu"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(f"unknown clip text-encoder config keys {unknown}; known: {sorted(known)}")
    layers = config.get("layers")
    return load_clip(
        name=str(config.get("model", "ViT-B-32")),
        pretrained=config.get("pretrained", "openai"),
        device=getattr(context, "device", None) or "cpu",
        layers=None if layers is None else tuple(layers),
        input_mode=config.get("input_mode"),
        quick_gelu=config.get("quick_gelu"),
    )
