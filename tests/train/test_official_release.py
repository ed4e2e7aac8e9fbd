"""A released checkpoint, as a user gets it: DF-GAN's `{'model': {netG, netD, netC}}` file and AttnGAN's
DAMSM text encoder (key layouts of the official code, random values made here) -> `t2igan convert` ->
`t2igan sample`, carrying the released numbers, not fresh ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from t2igan.cli import main
from t2igan.errors import ConfigError, T2IGanError
from t2igan.registry import get_registry
from t2igan.text.vocab import Vocabulary
from t2igan.training.checkpoint import read_checkpoint
from tests.models.conftest import official_to_random
from tests.models.test_dfgan import official_layout
from tests.text.test_damsm_encoders import official_text_layout, random_state

CAPTIONS = ["this bird is red with a short beak", "a small yellow bird with black wings"]


@pytest.fixture
def release(tmp_path, monkeypatch):
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    nets = {
        name: official_to_random(layout, seed=i) for i, (name, layout) in enumerate(official_layout().items())
    }
    torch.save(
        {"model": {k: {f"module.{n}": v for n, v in s.items()} for k, s in nets.items()}},
        tmp_path / "rel.pth",
    )
    vocab = Vocabulary.build(CAPTIONS)
    vocab.save(tmp_path / "vocab.json")
    torch.save(random_state(official_text_layout(len(vocab))), tmp_path / "text_encoder200.pth")
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[encoders.damsm]\nweights = "{tmp_path / "text_encoder200.pth"}"\nvocab = "{tmp_path / "vocab.json"}"\n',
        encoding="utf-8",
    )
    return tmp_path, nets, settings


def test_convert_then_sample_a_released_dfgan(release, capsys):
    folder, nets, settings = release
    converted = folder / "dfgan-bird.pt"
    assert (
        main(["convert", str(folder / "rel.pth"), "--model", "dfgan.bird256", "--out", str(converted)]) == 0
    )
    info = read_checkpoint(converted)["model"]
    assert info["preset"] == "bird256" and info["dataset"] == "cub"
    (origin,) = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert origin["file"] == str(folder / "rel.pth") and len(origin["sha256"]) == 64
    state = read_checkpoint(converted)["states"]["model"]
    generator = {k[len("generator.") :]: v for k, v in state.items() if k.startswith("generator.")}
    assert sum(v.numel() for v in generator.values()) == 9_744_131  # DF-GAN bird G (docs/official-code.md)
    ours = torch.sort(torch.cat([v.flatten() for v in generator.values()])).values
    released = torch.sort(torch.cat([v.flatten() for v in nets["netG"].values()])).values
    assert torch.equal(ours, released)  # the same numbers, whatever our module names

    png = folder / "grid.png"
    code = main(
        [
            "sample",
            "--ckpt",
            str(converted),
            "--plan",
            str(settings),
            "--text",
            CAPTIONS[0],
            "--n",
            "2",
            "--out",
            str(png),
        ]
    )
    assert code == 0, capsys.readouterr().err
    image = np.asarray(Image.open(png))
    assert image.shape[0] >= 256 and image.shape[1] >= 2 * 256  # one row, two 256 px samples
    assert image.std() > 0


def test_sample_without_the_vocabulary_says_which_key_is_missing(release, capsys):
    folder, _, _ = release
    converted = folder / "dfgan-bird.pt"
    assert (
        main(["convert", str(folder / "rel.pth"), "--model", "dfgan.bird256", "--out", str(converted)]) == 0
    )
    bare = folder / "bare.toml"
    bare.write_text(f'[encoders.damsm]\nweights = "{folder / "text_encoder200.pth"}"\n', encoding="utf-8")
    assert main(["sample", "--ckpt", str(converted), "--plan", str(bare), "--text", "a bird"]) == 2
    err = capsys.readouterr().err
    assert "text_encoder200.pth" in err and "'vocab'" in err


def test_convert_refuses_a_release_with_missing_keys(release, capsys):
    folder, nets, _ = release
    del nets["netG"]["fc.bias"]
    torch.save({"model": nets}, folder / "broken.pth")
    assert (
        main(
            ["convert", str(folder / "broken.pth"), "--model", "dfgan.bird256", "--out", str(folder / "x.pt")]
        )
        == 2
    )
    assert "fc.bias" in capsys.readouterr().err
    assert not (folder / "x.pt").exists()


def test_convert_asks_for_the_paper_preset_and_names_mismatched_shapes(release, capsys):
    folder, _, _ = release
    out = folder / "x.pt"
    # DF-GAN's bird, coco and flower releases share one layout: the file cannot say which it is
    assert main(["convert", str(folder / "rel.pth"), "--model", "dfgan", "--out", str(out)]) == 2
    assert "dfgan.bird256, dfgan.coco256, dfgan.flower256" in capsys.readouterr().err
    # the 256 px release into the 32 px preset: one error listing the shapes, not a traceback
    assert main(["convert", str(folder / "rel.pth"), "--model", "dfgan.tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "rel.pth as dfgan.tiny" in err and "shape mismatches" in err and "Traceback" not in err
    assert not out.exists()


def test_convert_takes_ratgan_netg_and_netd_files_with_the_flower_layout(tmp_path, capsys):
    from tests.models.test_ratgan import official_checkpoint

    nets = official_checkpoint(nf=8, seed=3)
    torch.save(nets["netG"], tmp_path / "netG_600.pth")
    torch.save(nets["netD"], tmp_path / "netD_600.pth")
    files = [str(tmp_path / "netG_600.pth"), str(tmp_path / "netD_600.pth")]
    out = tmp_path / "flower.pt"
    assert main(["convert", *files, "--model", "ratgan.flower256:nf=8", "--out", str(out)]) == 0
    checkpoint = read_checkpoint(out)
    states = checkpoint["states"]["model"]
    # model_flower.py's affine4 is the third affine of the first fusion: used by the forward, not dropped
    assert torch.equal(
        states["generator.blocks.0.fuse1.affine2.fc_gamma.linear1.weight"],
        nets["netG"]["block0.affine4.fc_gamma.linear1.weight"],
    )
    assert torch.equal(
        states["discriminator.head.joint_conv.2.weight"], nets["netD"]["COND_DNET.joint_conv.2.weight"]
    )
    assert [origin["file"] for origin in checkpoint["model"]["converted_from"]] == files

    # the generator file alone converts, with a warning that D keeps random weights
    assert main(["convert", files[0], "--model", "ratgan.bird256:nf=8", "--out", str(tmp_path / "g.pt")]) == 0
    assert "no discriminator in" in capsys.readouterr().err
    # the discriminator file alone is refused; the same file twice too
    assert main(["convert", files[1], "--model", "ratgan.bird256:nf=8", "--out", str(tmp_path / "d.pt")]) == 2
    assert "no generator" in capsys.readouterr().err
    assert main(["convert", files[0], files[0], "--model", "ratgan.bird256:nf=8", "--out", str(out)]) == 2
    assert "give each network's file once" in capsys.readouterr().err


def test_sample_checks_the_model_it_is_told_to_expect(release, capsys):
    folder, _, settings = release
    converted = folder / "dfgan-bird.pt"
    assert (
        main(["convert", str(folder / "rel.pth"), "--model", "dfgan.bird256", "--out", str(converted)]) == 0
    )
    base = ["sample", "--ckpt", str(converted), "--plan", str(settings), "--text", "a bird", "--n", "1"]
    assert main([*base, "--model", "ratgan", "--out", str(folder / "a.png")]) == 2
    assert "holds dfgan.bird256" in capsys.readouterr().err
    assert main([*base, "--model", "dfgan.coco256", "--out", str(folder / "b.png")]) == 2
    assert main([*base, "--model", "dfgan", "--out", str(folder / "c.png")]) == 0
    assert (folder / "c.png").is_file() and not (folder / "a.png").exists()


def test_convert_a_released_galip_keeps_its_networks_and_drops_the_frozen_clip(tmp_path, monkeypatch, capsys):
    from t2igan.nn.clip_gan_build import stand_in_clip
    from tests.models.test_galip import net_c, net_d, net_g, official_state, tiny_sizes

    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    sizes = tiny_sizes(stand_in_clip({"clip_model": "clip-small"}, torch.device("cpu")))
    nets = {"netG": official_state(net_g(sizes)), "netD": official_state(net_d(sizes), 1)}
    nets["netC"] = official_state(net_c(sizes), 2)
    torch.save({"model": nets, "epoch": 5}, tmp_path / "state_epoch_005.pth")
    out = tmp_path / "ours.pt"
    code = main(
        ["convert", str(tmp_path / "state_epoch_005.pth"), "--model", "galip.tiny", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    states = read_checkpoint(out)["states"]["model"]
    assert not [k for k in states if "CLIP_ViT" in k or k.startswith("clip.")]
    clip_keys = [k for k in nets["netG"] if k.startswith("mapping.CLIP_ViT.")]
    assert len(read_checkpoint(out)["model"]["official_clip_copy"]) == len(clip_keys) > 0
    assert torch.equal(states["generator.fc_code.weight"], nets["netG"]["fc_code.weight"])
    assert torch.equal(states["discriminator.head.joint_conv.0.weight"], nets["netC"]["joint_conv.0.weight"])


@pytest.mark.parametrize("same_clip", [True, False])
def test_a_converted_galip_loads_only_with_the_clip_its_netg_carried(tmp_path, monkeypatch, same_clip):
    from t2igan.nn.clip_gan_build import stand_in_clip
    from t2igan.registry import get_registry
    from t2igan.training.run import load_trained
    from t2igan.training.session import TextEncoderPool, TextHandle
    from tests.models.test_galip import net_c, net_d, net_g, official_state, tiny_sizes

    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    trained_with = stand_in_clip({"clip_model": "clip-small"}, torch.device("cpu"))
    found = trained_with if same_clip else stand_in_clip({"clip_model": "clip-small"}, torch.device("cpu"))
    sizes = tiny_sizes(trained_with)
    nets = {"netG": official_state(net_g(sizes), clip=trained_with), "netD": official_state(net_d(sizes), 1)}
    nets["netC"] = official_state(net_c(sizes), 2)
    torch.save({"model": nets}, tmp_path / "release.pth")
    out = tmp_path / "ours.pt"
    assert main(["convert", str(tmp_path / "release.pth"), "--model", "galip.tiny", "--out", str(out)]) == 0
    handle = TextHandle("clip", found.requires_grad_(False).eval(), "stand-in", {"name": "clip"})
    monkeypatch.setattr(TextEncoderPool, "get", lambda self, name, data, recorded=None: handle)
    load = lambda: load_trained(out, get_registry(), torch.device("cpu"), "shapes:size=tiny")  # noqa: E731
    if same_clip:
        model = load()[0]
        assert model.clip is found
    else:
        with pytest.raises(T2IGanError, match=r"CLIP_ViT.*are not those of the CLIP found now"):
            load()


@pytest.mark.parametrize("key", ["weights_sha256", "sha256"])  # records and checkpoints of either age
def test_a_recorded_encoder_file_that_was_replaced_is_refused(tmp_path, key):
    from t2igan.training.session import TextEncoderPool

    file = tmp_path / "damsm.pt"
    file.write_bytes(b"not the weights the model was trained with")
    pool = TextEncoderPool(get_registry(), torch.device("cpu"), progress=False)
    with pytest.raises(T2IGanError, match=r"damsm\.pt: sha256 .* differs from the 000000000000"):
        pool._recorded("damsm", {"name": "damsm", "path": str(file), key: "0" * 64})


def test_create_model_loads_a_release_in_memory_as_convert_writes_it(release):
    import t2igan

    folder, _, _ = release
    encoders = {
        "damsm": {"weights": str(folder / "text_encoder200.pth"), "vocab": str(folder / "vocab.json")}
    }
    direct = t2igan.create_model("dfgan.bird256", checkpoint=[folder / "rel.pth"], encoders=encoders)
    assert direct.name == "dfgan.bird256" and direct.data.name == "cub"
    path, info = t2igan.convert([folder / "rel.pth"], "dfgan.bird256", folder / "converted.pt")
    assert info["converted_from"][0]["file"] == str(folder / "rel.pth")
    loaded = t2igan.create_model("dfgan", checkpoint=path, encoders=encoders)
    captions = ["a small bird with a red head", "a bird"]
    images = direct.generate(captions, n=2, seed=3, as_tensor=True)
    assert images.shape == (4, 3, 256, 256) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, loaded.generate(captions, n=2, seed=3, as_tensor=True))
    assert not torch.equal(images, direct.generate(captions, n=2, seed=4, as_tensor=True))
    pictures = loaded.generate("a bird", n=1, seed=3)
    assert len(pictures) == 1 and pictures[0].size == (256, 256)
    with pytest.raises(ConfigError, match="holds dfgan.bird256"):
        t2igan.create_model("ratgan", checkpoint=path, encoders=encoders)


def test_sample_refuses_an_empty_caption_and_names_the_words_damsm_drops(release, capsys, restored_loggers):
    folder, _, settings = release
    converted = folder / "dfgan-bird.pt"
    assert (
        main(["convert", str(folder / "rel.pth"), "--model", "dfgan.bird256", "--out", str(converted)]) == 0
    )
    capsys.readouterr()
    sample = ["sample", "--ckpt", str(converted), "--plan", str(settings), "--n", "1"]
    assert main([*sample, "--text", CAPTIONS[0], "--text", "  ", "--out", str(folder / "a.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "t2igan sample: error: caption 2 (--text) is empty: expected a sentence, e.g. 'a red circle'"
    )
    assert not (folder / "a.png").exists()

    caption = "this zebra bird is red with purple feet and a zebra tail"
    assert main([*sample, "--text", caption, "--out", str(folder / "b.png")]) == 0
    err = capsys.readouterr().err
    assert (
        f"t2igan: warning: caption 1 {caption!r}: these 5 words are not in the damsm vocabulary and dropped: "
        "zebra, purple, feet, and, tail"
    ) in err
    assert (folder / "b.png").is_file()
    assert main([*sample, "--text", CAPTIONS[1], "--out", str(folder / "c.png")]) == 0
    assert "vocabulary" not in capsys.readouterr().err  # every word known: nothing said
