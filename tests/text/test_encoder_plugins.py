"""A third party's text encoder runs through the same paths as DAMSM and CLIP, with no change to core:
registered with a recipe it is pre-trained on `shapes` and cached, reloaded from the cache and from a
run's record, and on a real dataset loaded by its own `load`."""

from __future__ import annotations

import types
import zlib

import pytest
import torch
from torch import nn

import t2igan.data.builtin
import t2igan.text.builtin
from t2igan.errors import ConfigError
from t2igan.hookspecs import hookimpl
from t2igan.nn.interfaces import TextEncoder, TextFeatures
from t2igan.registry import PluginInfo, PluginLoader
from t2igan.specs import EncoderRecipe, LoadedText, TextEncoderSpec, TrainedText
from t2igan.text import pretrained
from t2igan.training.session import DatasetSession, TextEncoderPool
from tests.layouts import write_cub

BUCKETS, DIM = 64, 16


class BagOfWords(TextEncoder):
    """Hashed words -> one embedding per bucket, averaged: small enough to train in a blink."""

    sentence_dim = DIM
    word_dim = DIM

    def __init__(self):
        super().__init__()
        self.table = nn.EmbeddingBag(BUCKETS, DIM, mode="mean")

    def tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        ids = [[zlib.crc32(w.encode()) % BUCKETS for w in c.lower().split()] or [0] for c in captions]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return {"ids": torch.tensor([w for i in ids for w in i]), "offsets": offsets}

    def encode(self, tokens: dict[str, torch.Tensor]) -> TextFeatures:
        return TextFeatures(self.table(tokens["ids"], tokens["offsets"]))


def _train(images, captions, config, device, seed, progress) -> TrainedText:
    calls.append(dict(config))
    torch.manual_seed(seed)
    encoder = BagOfWords()
    # one "epoch": pull each image's captions towards its mean colour, projected
    colours = torch.as_tensor(images, dtype=torch.float32).mean(dim=(1, 2)) / 255.0
    target = colours @ torch.linspace(-1, 1, 3 * DIM).reshape(3, DIM)
    optimiser = torch.optim.SGD(encoder.parameters(), lr=float(config["lr"]))
    for caps, goal in zip(captions, target, strict=True):
        loss = (encoder.encode(encoder.tokenize(caps)).sentence - goal).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    def save(path, stats):
        torch.save({"state": encoder.state_dict(), "stats": stats}, path)

    return TrainedText(encoder.eval(), {"epochs": 1}, save)


def _load_ours(path, device="cpu") -> LoadedText:
    encoder = BagOfWords()
    encoder.load_state_dict(torch.load(path, weights_only=True)["state"])
    return LoadedText(encoder.to(device), view={"bag": encoder})


def _retrieval(encoder, images, captions, candidates, seed) -> float:
    with torch.no_grad():
        codes = encoder.encode_captions([c[0] for c in captions[:candidates]]).sentence
    return float((codes @ codes.T).argmax(dim=1).eq(torch.arange(len(codes))).float().mean())


def _load_for_run(config, context) -> LoadedText:
    encoder = BagOfWords()
    return LoadedText(encoder, {"weights_sha256": "0" * 64, "seen": [context.dataset, str(context.root)]})


def _config(values):
    unknown = set(values) - {"lr"}
    if unknown:
        raise ConfigError(f"unknown bag-of-words keys {sorted(unknown)}")
    return {"lr": 0.5, **values}


calls: list[dict] = []
RECIPE = EncoderRecipe(
    "bag-of-words encoder", {"data_image_size": 16}, _config, _train, _load_ours, _retrieval
)
plugin = types.ModuleType("t2igan_bow")


@hookimpl
def t2igan_register_text_encoders(register):
    register(TextEncoderSpec("bow", BagOfWords, "hashed bag of words", load=_load_for_run, recipe=RECIPE))
    register(TextEncoderSpec("bare", BagOfWords, "a bag of words with no recipe"))


plugin.t2igan_register_text_encoders = t2igan_register_text_encoders


@pytest.fixture()
def registry(monkeypatch, tmp_path):
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    calls.clear()
    loader = PluginLoader(entry_points=[], environ={})
    for name, module in (("data", t2igan.data.builtin), ("text", t2igan.text.builtin), ("bow", plugin)):
        assert loader.add(module, PluginInfo(name, module.__name__)).status == "ok"
    return loader.registry


def test_a_plugin_encoder_is_pretrained_once_then_loaded_from_the_cache_and_the_record(registry, tmp_path):
    data = DatasetSession.open(registry, "shapes:size=tiny", progress=False)
    first = TextEncoderPool(registry, torch.device("cpu"), progress=False).get("bow", data)
    assert len(calls) == 1 and calls[0] == {"lr": 0.5}
    assert first.info["source"] == "pre-trained by t2igan on shapes:size=tiny"
    assert first.info["path"].startswith(str(tmp_path / "cache" / "encoders" / "bow"))
    assert 0.0 <= first.info["retrieval_top1"] <= 1.0
    assert set(first.metric_object) == {"bag"}  # the recipe's view, not the module
    sentence = first.encode(["a red circle"], torch.device("cpu")).sentence
    assert sentence.shape == (1, DIM)

    again = TextEncoderPool(registry, torch.device("cpu"), progress=False).get("bow", data)
    assert len(calls) == 1 and again.key == first.key
    recorded = TextEncoderPool(registry, torch.device("cpu"), progress=False).get("bow", data, first.info)
    assert len(calls) == 1 and recorded.key == first.key
    assert torch.equal(recorded.encode(["a red circle"], torch.device("cpu")).sentence, sentence)


def test_a_plugin_encoder_loads_on_a_real_dataset_through_its_own_loader(registry, tmp_path):
    write_cub(tmp_path / "cub")
    data = DatasetSession.open(registry, "cub", root=str(tmp_path / "cub"), progress=False)
    handle = TextEncoderPool(registry, torch.device("cpu"), progress=False).get("bow", data)
    assert handle.info["seen"] == ["cub", str(tmp_path / "cub")]
    assert handle.key == "bow-" + "0" * 16 and not calls


def test_an_encoder_without_a_recipe_cannot_run_on_shapes_and_the_error_names_those_that_can(registry):
    data = DatasetSession.open(registry, "shapes:size=tiny", progress=False)
    pool = TextEncoderPool(registry, torch.device("cpu"), progress=False)
    with pytest.raises(
        ConfigError, match="'bare' has no pre-training recipe.*those with one: bow, clip, damsm"
    ):
        pool.get("bare", data)
    with pytest.raises(ConfigError, match="unknown bag-of-words keys"):
        pretrained.full_config("bow", {"epochs": 3}, registry)


def test_the_command_pretrains_a_plugin_encoder_by_name_and_refuses_one_without_a_recipe(
    registry, monkeypatch, capsys, tmp_path
):
    from t2igan.cli import main

    monkeypatch.setattr("t2igan.registry.get_registry", lambda *args, **kwargs: registry)
    out = tmp_path / "bow.pt"
    assert main(["pretrain-encoder", "bow", "--data", "shapes:size=tiny", "--out", str(out)]) == 0
    assert out.is_file() and calls == [{"lr": 0.5}]
    assert f"path   {out}" in capsys.readouterr().out.splitlines()
    assert main(["pretrain-encoder", "bare", "--data", "shapes:size=tiny"]) == 2
    assert "text encoder 'bare' has no pre-training recipe" in capsys.readouterr().err
    assert main(["pretrain-encoder", "bwo", "--data", "shapes:size=tiny"]) == 2
    assert "unknown text encoder 'bwo'. Did you mean 'bow'?" in capsys.readouterr().err
