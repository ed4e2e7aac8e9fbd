"""CLIPTextImageEncoder on the tiny config: output shapes and dtypes, agreement with open_clip's own
encode_text/encode_image, the input transforms, weights resolution and our checkpoint format."""

from __future__ import annotations

import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from t2igan.errors import ConfigError, UnknownNameError, WeightsNotFoundError
from t2igan.text.clip import (
    build_clip,
    load_clip,
    save_clip_checkpoint,
    to_clip_input,
)

CAPTIONS = ["a small red circle at the top left", "two blue squares on a grey background", "a"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load_clip("clip-tiny", None, input_mode="clean")


def _images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1) + torch.tensor(OPENAI_DATASET_MEAN).view(
        1, 3, 1, 1
    )


@torch.no_grad()
def test_text_outputs(tiny):
    tokens = tiny.tokenize(CAPTIONS)
    assert tokens["tokens"].shape == (3, 32) and tokens["tokens"].dtype == torch.long
    features = tiny.encode(tokens)
    assert features.sentence.shape == (3, tiny.sentence_dim) == (3, 64)
    assert features.words.shape == (3, tiny.word_dim, 32) == (3, 64, 32)
    assert features.sentence.dtype == features.words.dtype == torch.float32
    assert features.mask.dtype == torch.bool
    assert torch.equal(features.mask, tokens["tokens"] == 0)  # padding is token id 0 after EOT
    expected = tiny.model.encode_text(tokens["tokens"])  # open_clip's own path, unnormalised
    torch.testing.assert_close(features.sentence, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(features.sentence.norm(dim=1), torch.ones(3))


@torch.no_grad()
def test_trimmed_tokens_give_the_same_features_up_to_eot(tiny):
    tokens = tiny.tokenize(CAPTIONS)["tokens"]
    trimmed = tiny.trim_tokens(tokens)
    longest = int((tokens != 0).sum(dim=1).max())  # SOT ... EOT of the longest caption
    assert trimmed.shape == (3, longest) and longest < tokens.shape[1]
    full, short = tiny.encode({"tokens": tokens}), tiny.encode({"tokens": trimmed})
    torch.testing.assert_close(short.sentence, full.sentence, atol=1e-5, rtol=0)
    torch.testing.assert_close(short.words, full.words[:, :, :longest], atol=1e-5, rtol=0)
    # without the causal mask the padding is attended to, so nothing may be cut
    saved, tiny.model.attn_mask = tiny.model.attn_mask, None
    try:
        assert tiny.trim_tokens(tokens) is tokens
    finally:
        tiny.model.attn_mask = saved


@torch.no_grad()
def test_image_outputs(tiny):
    images = _images(2)
    maps, embedding = tiny.image_features(images)
    assert tiny.layers == (1, 2, 3) and tiny.grid_size == 4 and tiny.image_width == 64
    assert maps.shape == (2, 3, 64, 4, 4) and embedding.shape == (2, 64)
    assert maps.dtype == embedding.dtype == torch.float32
    expected = tiny.model.encode_image(to_clip_input(images, "clean", 32))
    torch.testing.assert_close(embedding, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny.image_embedding(images), expected, atol=1e-5, rtol=0)
    two, _ = tiny.image_features(images, layers=(0, 3))
    assert two.shape == (2, 2, 64, 4, 4)
    torch.testing.assert_close(two[:, 1], maps[:, 2])
    paper = tiny.image_embedding(images, mode="paper")
    assert not torch.allclose(paper, embedding, atol=1e-3)  # the mode changes the numbers


def test_mapper_passes_gradients_to_prompts_not_clip(tiny):
    grid_map = torch.randn(2, 64, 4, 4, requires_grad=True)
    prompts = torch.randn(2, len(tiny.prompt_blocks), 64, requires_grad=True)
    out = tiny.map_with_prompts(grid_map, prompts)
    assert out.shape == (2, 64, 4, 4)
    out.square().mean().backward()
    assert prompts.grad.abs().sum() > 0 and grid_map.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tiny.parameters())
    with torch.no_grad():
        plain = tiny.tokens_to_map(tiny.run_visual_blocks(tiny.visual_tokens(grid_map))[0])
        assert not torch.allclose(plain, out, atol=1e-4)  # the prompts take part in attention
    with pytest.raises(ConfigError, match=r"prompts must be \(B, 3, 64\)"):
        tiny.map_with_prompts(grid_map, prompts[:, :2])
    with pytest.raises(ConfigError, match=r"0\.\.3"):
        tiny.run_visual_blocks(tiny.visual_tokens(grid_map), {4: prompts[:, 0]})


def test_paper_transform_copies_galip_quirk():
    images = torch.linspace(-1, 1, 3 * 8 * 8).view(1, 3, 8, 8)
    out = to_clip_input(images, "paper", size=224)
    assert out.shape == (1, 3, 224, 224)
    raw = _unnormalise(out)
    assert raw.min() >= 0.5 - 1e-6 and raw.max() <= 1 + 1e-6  # [-1, 1] -> [0.5, 1]
    assert abs(raw.min().item() - 0.5) < 1e-6 and abs(raw.max().item() - 1.0) < 1e-6
    # nearest resize: output pixel (i, j) is input pixel (floor(i*8/224), floor(j*8/224))
    expected = ((images[0, :, 3, 5] * 0.5 + 0.5) + 1) * 0.5
    torch.testing.assert_close(raw[0, :, 3 * 28 + 13, 5 * 28 + 27], expected)


def test_clean_transform_maps_range_once():
    constant = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 20, 30).contiguous()
    raw = _unnormalise(to_clip_input(constant, "clean", size=16))
    assert raw.shape == (1, 3, 16, 16)  # shortest side to 16, centre crop
    torch.testing.assert_close(raw[0].flatten(1).mean(1), torch.tensor([0.0, 0.5, 1.0]), atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="input_mode"):
        to_clip_input(constant, "bogus")


def test_offline_error_names_file_place_and_flag(monkeypatch):
    monkeypatch.delenv("T2IGAN_WEIGHTS", raising=False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", offline)
    with pytest.raises(WeightsNotFoundError) as caught:
        load_clip("ViT-B-32", "openai")
    message = str(caught.value)
    setting = 'set pretrained = "FILE" under [encoders.clip] in a plan file'
    for part in ("clip/ViT-B-32.pt", "$T2IGAN_WEIGHTS/clip/ViT-B-32.pt", setting, "unreachable"):
        assert part in message


def test_missing_local_file_is_named(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nowhere.pt"):
        load_clip("clip-tiny", tmp_path / "nowhere.pt")


@torch.no_grad()
def test_checkpoint_round_trip_and_weights_dir(tiny, tmp_path, monkeypatch):
    target = tmp_path / "clip" / "clip-tiny-shapes.pt"
    save_clip_checkpoint(target, tiny, stats={"train_retrieval_top1": 0.5})
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left behind
    raw = torch.load(target, weights_only=True)
    assert raw["format"] == "t2igan.clip" and raw["input_mode"] == "clean" and raw["layers"] == [1, 2, 3]
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(tmp_path))
    loaded = load_clip("clip-tiny", "shapes")  # resolved as $T2IGAN_WEIGHTS/clip/clip-tiny-shapes.pt
    assert loaded.input_mode == "clean" and loaded.layers == (1, 2, 3)
    assert loaded.source.stats == {"train_retrieval_top1": 0.5}
    assert loaded.describe()["weights_file"] == str(target) and len(loaded.describe()["weights_sha256"]) == 64
    images, tokens = _images(2, seed=3), tiny.tokenize(CAPTIONS)
    torch.testing.assert_close(loaded.image_features(images)[0], tiny.image_features(images)[0])
    torch.testing.assert_close(loaded.encode(tokens).sentence, tiny.encode(tokens).sentence)


def test_build_clip_config_keys():
    encoder = build_clip({"model": "clip-tiny", "pretrained": None, "layers": [0, 2], "input_mode": "paper"})
    assert encoder.layers == (0, 2) and encoder.input_mode == "paper" and encoder.prompt_blocks == (1, 2)
    assert not any(p.requires_grad for p in encoder.parameters())
    with pytest.raises(ConfigError, match="unknown clip text-encoder config keys"):
        build_clip({"model": "clip-tiny", "pretrained": None, "layer": [1]})
    with pytest.raises(ConfigError, match=r"0\.\.3"):
        build_clip({"model": "clip-tiny", "pretrained": None, "layers": [1, 7]})
    with pytest.raises(UnknownNameError, match="clip-tiny"):
        build_clip({"model": "clip-tinyy", "pretrained": None})
