"""Our open_clip-based CLIP features equal the official GALIP features computed with OpenAI's `clip` package
(sequence-first resblocks), on a ViT-B/32 with random weights; OpenAI's TorchScript archive format loads."""

from __future__ import annotations

import importlib
import sys
import types

import packaging.version
import pytest
import torch

from t2igan.text.clip import (
    CLIPTextImageEncoder,
    build_open_clip_model,
    load_clip,
    openai_config,
    to_clip_input,
)

ATOL = 1e-5  # fp32
CAPTIONS = [
    "this bird has a red crown and white wing bars",
    "a small yellow bird " + "with a very long caption " * 20,  # longer than 77 tokens: truncated
    "x",
]


@pytest.fixture(scope="module")
def openai_clip():
    """The OpenAI `clip` package (test-only dependency `openai-clip`). Its `clip.py` imports
    `pkg_resources.packaging`, gone from recent setuptools: give it a stand-in while importing."""
    with pytest.MonkeyPatch.context() as patch:
        try:
            importlib.import_module("pkg_resources")
        except ImportError:
            stub = types.ModuleType("pkg_resources")
            stub.packaging = packaging
            patch.setitem(sys.modules, "pkg_resources", stub)
        clip = importlib.import_module("clip")
        importlib.import_module("clip.model")
    return clip


def _random_openai_state(clip, **shape) -> dict[str, torch.Tensor]:
    """Random weights in OpenAI's layout, shaped by its own CLIP class (built on the meta device)."""
    with torch.device("meta"):
        template = clip.model.CLIP(**shape)
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in template.state_dict().items():
        noise = torch.randn(value.shape, generator=generator)
        if value.dim() == 1 and ".ln_" in f".{key.split('.')[-2]}" and key.endswith("weight"):
            state[key] = 1 + 0.1 * noise  # LayerNorm gains
        elif key == "logit_scale":
            state[key] = torch.tensor(4.6052)
        else:
            state[key] = 0.02 * noise if value.dim() != 2 or "embedding" not in key else 0.1 * noise
    return state


VIT_B_32 = dict(  # what OpenAI clip/model.py build_model reads from ViT-B-32.pt (docs/official-code.md)
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=32,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)


@pytest.fixture(scope="module")
def pair(openai_clip):
    """(OpenAI-layout model, our encoder) holding the same random ViT-B/32 weights."""
    official = openai_clip.model.build_model(_random_openai_state(openai_clip, **VIT_B_32)).float().eval()
    state = official.state_dict()
    ours = CLIPTextImageEncoder(build_open_clip_model(openai_config(state), state=state), input_mode="paper")
    return official, ours.freeze()


def _official_text(official, tokens):
    """GALIP CLIP_TXT_ENCODER: sequence-first transformer, ln_final, EOT row @ text_projection."""
    x = official.token_embedding(tokens) + official.positional_embedding
    x = official.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    x = official.ln_final(x)
    return x[torch.arange(len(x)), tokens.argmax(dim=-1)] @ official.text_projection, x


def _official_tokens(official, pixels_or_map, from_pixels=True):
    visual = official.visual
    x = visual.conv1(pixels_or_map) if from_pixels else pixels_or_map
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
    x = visual.ln_pre(torch.cat([cls, x], dim=1) + visual.positional_embedding)
    return x.permute(1, 0, 2)  # (L, N, D) as the official code feeds the resblocks


def _official_image(official, images):
    """GALIP CLIP_IMG_ENCODER: patch tokens after blocks 1, 4, 8 as (B, 768, 7, 7), and ln_post(CLS) @ proj."""
    x = _official_tokens(official, to_clip_input(images, "paper"))
    local = []
    for index in range(12):
        x = official.visual.transformer.resblocks[index](x)
        if index in (1, 4, 8):
            local.append(x.permute(1, 0, 2)[:, 1:, :].permute(0, 2, 1).reshape(-1, 768, 7, 7))
    return torch.stack(local, dim=1), official.visual.ln_post(x.permute(1, 0, 2)[:, 0]) @ official.visual.proj


def _official_mapper(official, grid_map, prompts):
    """GALIP CLIP_Mapper: prompt i-1 appended (sequence-first, dim 0) before block i for i in 1..8."""
    x = _official_tokens(official, grid_map, from_pixels=False)
    for index in range(12):
        if 1 <= index <= 8:
            x = torch.cat((x, prompts[:, index - 1].unsqueeze(0)), dim=0)
            x = official.visual.transformer.resblocks[index](x)[:-1]
        else:
            x = official.visual.transformer.resblocks[index](x)
    return x.permute(1, 0, 2)[:, 1:, :].permute(0, 2, 1).reshape(-1, 768, 7, 7)


def test_tokenizer_matches_openai_with_truncation(openai_clip, pair):
    _, ours = pair
    expected = openai_clip.tokenize(CAPTIONS, truncate=True).long()
    got = ours.tokenize(CAPTIONS)["tokens"]
    assert torch.equal(got, expected)
    assert got[1, -1] == expected.max()  # truncated caption ends with EOT


@torch.no_grad()
def test_text_features_equal_official(openai_clip, pair):
    official, ours = pair
    tokens = openai_clip.tokenize(CAPTIONS, truncate=True).long()
    sentence, words = _official_text(official, tokens)
    features = ours.encode({"tokens": tokens})
    assert features.sentence.shape == (3, 512) and features.words.shape == (3, 512, 77)
    torch.testing.assert_close(features.sentence, sentence, atol=ATOL, rtol=0)
    torch.testing.assert_close(features.words, words.transpose(1, 2), atol=ATOL, rtol=0)
    assert sentence.norm(dim=1).sub(1).abs().min() > 1e-3  # not L2-normalised
    assert torch.equal(features.mask, torch.arange(77)[None] > tokens.argmax(-1)[:, None])


@torch.no_grad()
def test_image_features_equal_official(pair):
    official, ours = pair
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    local, embedding = _official_image(official, images)
    maps, global_embedding = ours.image_features(images)
    assert maps.shape == (2, 3, 768, 7, 7) and global_embedding.shape == (2, 512)
    torch.testing.assert_close(maps, local, atol=ATOL, rtol=0)
    torch.testing.assert_close(global_embedding, embedding, atol=ATOL, rtol=0)
    official_encode = official.encode_image(to_clip_input(images, "paper"))
    torch.testing.assert_close(ours.image_embedding(images), official_encode, atol=ATOL, rtol=0)


@torch.no_grad()
def test_prompted_mapper_equals_official(pair):
    official, ours = pair
    generator = torch.Generator().manual_seed(2)
    grid_map, prompts = (
        torch.randn(2, 768, 7, 7, generator=generator),
        torch.randn(2, 8, 768, generator=generator),
    )
    assert ours.prompt_blocks == tuple(range(1, 9))
    expected = _official_mapper(official, grid_map, prompts)
    torch.testing.assert_close(ours.map_with_prompts(grid_map, prompts), expected, atol=ATOL, rtol=0)
    # the layout matters: open_clip's batch-first blocks fed sequence-first tensors give other numbers
    tokens = _official_tokens(official, grid_map, from_pixels=False)
    assert ours.model.visual.transformer.batch_first
    misfed = ours.model.visual.transformer.resblocks[0](tokens)
    assert not torch.allclose(misfed, official.visual.transformer.resblocks[0](tokens), atol=1e-3)


TINY_OPENAI = dict(
    embed_dim=32,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    context_length=16,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=2,
)


@pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning", "ignore:`torch.jit.*` is deprecated:FutureWarning"
)
@torch.no_grad()
def test_torchscript_archive_loads_like_openai_release(openai_clip, tmp_path):
    official = openai_clip.model.build_model(_random_openai_state(openai_clip, **TINY_OPENAI)).float().eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    tokens = openai_clip.tokenize(["a red bird", "a blue bird"], context_length=16).long()
    archive = tmp_path / "tiny-openai.pt"
    torch.jit.save(torch.jit.trace(official, (to_clip_input(images, "paper", 32), tokens)), str(archive))
    encoder = load_clip("tiny-openai", archive, layers=(0, 1))
    assert encoder.describe()["weights_file"] == str(archive) and encoder.input_mode == "paper"
    assert encoder.context_length == 16 and encoder.image_size == 32
    torch.testing.assert_close(
        encoder.encode({"tokens": tokens}).sentence, official.encode_text(tokens), atol=ATOL, rtol=0
    )
    expected = official.encode_image(to_clip_input(images, "paper", 32))
    torch.testing.assert_close(encoder.image_embedding(images), expected, atol=ATOL, rtol=0)


def test_clip_score_equals_galip_calc_clip_sim_with_the_official_model(openai_clip, pair):
    """The CLIP score metric on our encoder against GALIP's computation on OpenAI's model, same random ViT-B/32:
    transf_to_CLIP_input (nearest resize of x*0.5+0.5, then ((x+1)*0.5 - mean)/std), clip.tokenize(truncate),
    mean cosine of encode_image and encode_text; no x100, no clipping."""
    from t2igan.metrics.clip_score import CLIPScoreMetric
    from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample

    official, ours = pair
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    pixels = (torch.nn.functional.interpolate(images * 0.5 + 0.5, size=(224, 224)) + 1) * 0.5
    with torch.no_grad():
        image_features = official.encode_image((pixels - mean) / std)
        text_features = official.encode_text(openai_clip.tokenize(CAPTIONS, truncate=True))
    expected = torch.cosine_similarity(image_features, text_features).mean().item()

    metric = CLIPScoreMetric({}, EvalContext(encoders={"clip": ours}))
    metric.update(EvalBatch(0, images, list(CAPTIONS), [EvalSample(-1, 0, 0)] * 3))
    [value] = metric.compute()
    assert abs(value.value - expected) < ATOL and value.provenance["mode"] == "paper"
