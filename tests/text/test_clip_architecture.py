"""A CLIP weights file is built with the architecture it was trained with, whichever way a user gives
it: OpenAI's TorchScript archive (by path or by the `openai` tag), a state dict carrying OpenAI's
scalars, a checkpoint of ours, or a plain state dict, which is ambiguous (QuickGELU or GELU) unless
`quick_gelu` or the model name says which, and is then refused. Built with the other activation the
model runs and gives other numbers, which is why a silent choice is not allowed."""

from __future__ import annotations

import pytest
import torch
from open_clip.transformer import QuickGELU

from t2igan.errors import ConfigError
from t2igan.metrics.clip_score import parse_second_clip
from t2igan.text.clip import build_clip, build_open_clip_model, load_clip, model_config, save_clip_checkpoint
from tests.standins import openai_clip_package
from tests.text.test_clip_openai_layout import _random_openai_state

SMALL_OPENAI = dict(  # OpenAI's CLIP class at a size that traces in a second
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=2,
)


def activation(encoder) -> str:
    found = {type(m).__name__ for m in encoder.model.modules() if isinstance(m, (QuickGELU, torch.nn.GELU))}
    assert len(found) == 1, found
    return found.pop()


@pytest.fixture(scope="module")
def openai_files(tmp_path_factory):
    """A small OpenAI CLIP as its release is (a traced TorchScript archive), and as a state dict with
    the scalars OpenAI's archive holds beside the tensors."""
    folder = tmp_path_factory.mktemp("openai")
    clip = openai_clip_package()
    state = _random_openai_state(clip, **SMALL_OPENAI)
    model = clip.model.build_model(dict(state)).float().eval()
    with torch.no_grad():
        traced = torch.jit.trace(
            model, (torch.rand(1, 3, 32, 32), clip.tokenize(["a bird"])), check_trace=False
        )
    archive = folder / "small-openai.pt"
    torch.jit.save(traced, str(archive))
    scalars = {
        "input_resolution": torch.tensor(32),
        "context_length": torch.tensor(77),
        "vocab_size": torch.tensor(49408),
    }
    with_scalars = folder / "small-openai-state.pt"
    torch.save({**state, **scalars}, with_scalars)
    return archive, with_scalars


@pytest.fixture(scope="module")
def plain_state(tmp_path_factory):
    """A plain state dict of our clip-tiny: nothing in it says which activation it was trained with."""
    path = tmp_path_factory.mktemp("plain") / "clip-tiny-state.pt"
    torch.save(build_open_clip_model(model_config("clip-tiny")).state_dict(), path)
    return path


def test_openai_files_are_quickgelu_by_path_and_by_tag(openai_files, tmp_path, monkeypatch):
    archive, with_scalars = openai_files
    assert activation(load_clip("ViT-B-32", pretrained=str(archive), layers=(1,))) == "QuickGELU"
    assert (
        activation(load_clip("ViT-B-32", pretrained=str(with_scalars), layers=(1,))) == "QuickGELU"
    )  # the bug: GELU
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "ViT-B-32.pt").write_bytes(archive.read_bytes())
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(tmp_path))
    assert activation(load_clip("ViT-B-32", pretrained="openai", layers=(1,))) == "QuickGELU"
    with pytest.raises(
        ConfigError, match="quick_gelu=False contradicts OpenAI's release format, which is QuickGELU"
    ):
        load_clip("ViT-B-32", pretrained=str(archive), layers=(1,), quick_gelu=False)


def test_a_plain_state_dict_is_refused_unless_its_activation_is_stated(plain_state):
    with pytest.raises(ConfigError) as caught:
        load_clip("clip-tiny", pretrained=str(plain_state))
    message = str(caught.value)
    assert message.startswith(f"CLIP weights {plain_state}: a plain state dict does not say which activation")
    assert "quick_gelu = true or false under [encoders.clip]" in message and "-quickgelu" not in message
    assert activation(load_clip("clip-tiny", pretrained=str(plain_state), quick_gelu=True)) == "QuickGELU"
    assert activation(load_clip("clip-tiny", pretrained=str(plain_state), quick_gelu=False)) == "GELU"


def test_the_plan_settings_and_the_second_clip_take_the_same_paths(plain_state, openai_files):
    archive, _ = openai_files
    plan = {"model": "clip-tiny", "pretrained": str(plain_state), "quick_gelu": True}
    assert activation(build_clip(plan)) == "QuickGELU"  # [encoders.clip] pretrained + quick_gelu
    with pytest.raises(ConfigError, match="does not say which activation"):
        build_clip({"model": "clip-tiny", "pretrained": str(plain_state)})
    settings = parse_second_clip(f"ViT-B-32={archive}", "--second-clip")  # --second-clip MODEL=WEIGHTS
    assert (
        activation(load_clip(settings["model"], pretrained=settings["pretrained"], layers=(1,)))
        == "QuickGELU"
    )


def test_a_name_whose_config_says_quickgelu_settles_it(tmp_path):
    with pytest.raises(ConfigError, match="or name the model ViT-B-32-quickgelu"):
        load_clip("ViT-B-32", pretrained=str(_plain_vit_b_32_header(tmp_path)))
    assert model_config("ViT-B-32-quickgelu")["quick_gelu"] is True


def _plain_vit_b_32_header(folder):
    """A state dict that is refused before its tensors are read: the refusal needs none of ViT-B/32's."""
    path = folder / "vit.pt"
    torch.save({"visual.proj": torch.zeros(1)}, path)
    return path


def test_a_checkpoint_of_ours_carries_its_architecture(tmp_path, plain_state):
    encoder = load_clip("clip-tiny", pretrained=str(plain_state), quick_gelu=True)
    path = save_clip_checkpoint(tmp_path / "ours.pt", encoder)
    assert activation(load_clip("clip-tiny", pretrained=str(path))) == "QuickGELU"
    with pytest.raises(ConfigError, match="contradicts the checkpoint's own config, which is QuickGELU"):
        load_clip("clip-tiny", pretrained=str(path), quick_gelu=False)
