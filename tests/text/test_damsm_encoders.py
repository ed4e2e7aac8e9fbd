"""DAMSM encoders: output shapes, the official key layout, strict loading of official-style files and
of our checkpoints, and errors that name the file and keys at fault."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchvision.models import inception_v3

from t2igan.errors import ConfigError, T2IGanError, WeightsNotFoundError
from t2igan.text.damsm import (
    DAMSMImageEncoder,
    DAMSMTextEncoder,
    SmallDAMSMImageEncoder,
    build_damsm,
    build_damsm_image_encoder,
    build_image_encoder,
    load_damsm,
    save_damsm_checkpoint,
)
from t2igan.text.vocab import Vocabulary

CAPTIONS = [
    "this bird has a red crown and a short beak",
    "a small bird",
    "the bird is yellow with black wings and a long tail and it sits on a branch near the water",
    "bird",
]
INCEPTION_TRUNK = (
    "Conv2d_1a_3x3 Conv2d_2a_3x3 Conv2d_2b_3x3 Conv2d_3b_1x1 Conv2d_4a_3x3 Mixed_5b Mixed_5c Mixed_5d "
    "Mixed_6a Mixed_6b Mixed_6c Mixed_6d Mixed_6e Mixed_7a Mixed_7b Mixed_7c"
).split()


@pytest.fixture
def vocab():
    return Vocabulary.build(CAPTIONS)


def official_text_layout(vocab_size: int) -> dict[str, tuple[int, ...]]:
    """RNN_ENCODER(ntoken, ninput=300, nhidden=256, bidirectional) as AttnGAN code/model.py builds it."""
    layout = {"encoder.weight": (vocab_size, 300)}
    for suffix in ("", "_reverse"):
        layout |= {
            f"rnn.weight_ih_l0{suffix}": (4 * 128, 300),
            f"rnn.weight_hh_l0{suffix}": (4 * 128, 128),
            f"rnn.bias_ih_l0{suffix}": (4 * 128,),
            f"rnn.bias_hh_l0{suffix}": (4 * 128,),
        }
    return layout


def official_image_layout() -> dict[str, tuple[int, ...]]:
    """CNN_ENCODER: torchvision inception_v3's trunk modules by name + emb_features + emb_cnn_code."""
    with torch.device("meta"):
        tv = inception_v3(weights=None, aux_logits=True, init_weights=False)
    layout = {k: tuple(v.shape) for k, v in tv.state_dict().items() if k.split(".")[0] in INCEPTION_TRUNK}
    layout |= {
        "emb_features.weight": (256, 768, 1, 1),
        "emb_cnn_code.weight": (256, 2048),
        "emb_cnn_code.bias": (256,),
    }
    return layout


def official_forward(state: dict, ids: torch.Tensor, lengths: torch.Tensor):
    """The official encode path: sort by length, pack, LSTM, unpack, restore order (DF-GAN lib/datasets.py)."""
    embedding = nn.Embedding(*state["encoder.weight"].shape)
    lstm = nn.LSTM(300, 128, 1, batch_first=True, bidirectional=True)
    embedding.weight.data.copy_(state["encoder.weight"])
    lstm.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("rnn.")})
    sorted_lengths, order = torch.sort(lengths, 0, True)
    packed = pack_padded_sequence(embedding(ids[order]), sorted_lengths, batch_first=True)
    output, (hidden, _) = lstm(packed)
    words = pad_packed_sequence(output, batch_first=True)[0].transpose(1, 2)
    sentence = hidden.transpose(0, 1).contiguous().view(-1, 256)
    unsorted_words, unsorted_sentence = torch.empty_like(words), torch.empty_like(sentence)
    for position, original in enumerate(order):
        unsorted_words[original], unsorted_sentence[original] = words[position], sentence[position]
    return unsorted_words, unsorted_sentence


def random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


def test_text_encoder_outputs(vocab):
    encoder = DAMSMTextEncoder(vocab).eval()
    tokens = encoder.tokenize(CAPTIONS)
    assert tokens["ids"].dtype == torch.long and tokens["ids"].shape == (4, 18)
    assert tokens["lengths"].tolist() == [10, 3, 18, 1]
    features = encoder.encode(tokens)
    assert features.sentence.shape == (4, 256) and features.sentence.dtype == torch.float32
    assert features.words.shape == (4, 256, 18) and features.mask.dtype == torch.bool
    assert features.mask.sum(dim=1).tolist() == [8, 15, 0, 17]
    assert torch.all(features.words[1, :, 3:] == 0)  # padded positions are zero, as pad_packed_sequence gives
    assert encoder.sentence_dim == encoder.word_dim == 256 and encoder.max_words == 18


def test_long_captions_keep_18_words_in_order(vocab):
    encoder = DAMSMTextEncoder(vocab, subsample_seed=3)
    full = vocab.encode(CAPTIONS[2])
    assert len(full) > 18

    def is_subsequence(ids):
        it = iter(full)
        return all(any(i == f for f in it) for i in ids)

    fixed = [encoder.tokenize([CAPTIONS[2]])["ids"][0].tolist() for _ in range(3)]
    assert fixed[0] == fixed[1] == fixed[2] and is_subsequence(fixed[0]) and len(fixed[0]) == 18
    # deterministic per caption, whatever else is in the batch
    assert encoder.tokenize(CAPTIONS)["ids"][2].tolist() == fixed[0]
    rng = random.Random(0)
    drawn = {tuple(encoder.tokenize([CAPTIONS[2]], rng=rng)["ids"][0].tolist()) for _ in range(8)}
    assert len(drawn) > 1 and all(is_subsequence(d) for d in drawn)


def test_unknown_only_caption_becomes_one_end_token(vocab):
    tokens = DAMSMTextEncoder(vocab).tokenize(["zebra okapi"])
    assert tokens["ids"].tolist() == [[0]] and tokens["lengths"].tolist() == [1]


def test_module_layouts_match_the_official_architecture(vocab):
    text = DAMSMTextEncoder(vocab)
    assert {k: tuple(v.shape) for k, v in text.state_dict().items()} == official_text_layout(len(vocab))
    with torch.device("meta"):
        image = DAMSMImageEncoder()
    assert {k: tuple(v.shape) for k, v in image.state_dict().items()} == official_image_layout()
    # only the projections learn; the Inception trunk is frozen as in pretrain_DAMSM.py
    assert {n for n, p in image.named_parameters() if p.requires_grad} == {
        "emb_features.weight",
        "emb_cnn_code.weight",
        "emb_cnn_code.bias",
    }


def test_image_encoder_output_shapes():
    with torch.device("meta"):
        inception = DAMSMImageEncoder()
        regions, code = inception(torch.empty(2, 3, 64, 64))
    assert regions.shape == (2, 256, 17, 17) and code.shape == (2, 256)
    small = build_image_encoder({"image_encoder": "small", "image_size": 32, "grid": 8, "width": 8}).eval()
    assert isinstance(small, SmallDAMSMImageEncoder)
    for size in (32, 48):
        regions, code = small(torch.rand(3, 3, size, size) * 2 - 1)
        assert regions.shape == (3, 256, 8, 8) and code.shape == (3, 256) and code.dtype == torch.float32
    with pytest.raises(ConfigError, match="input_size 48"):
        SmallDAMSMImageEncoder(input_size=48, grid=8)
    with pytest.raises(ConfigError, match="image_encoder='vgg'"):
        build_image_encoder({"image_encoder": "vgg"})


def test_official_text_file_loads_strictly_and_matches_the_official_forward(tmp_path, vocab):
    state = random_state(official_text_layout(len(vocab)))
    # a DDP-saved file: the official loader strips 'module.'
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "text_encoder200.pth")
    loaded = load_damsm(tmp_path / "text_encoder200.pth", vocab=vocab, with_image=False).text_encoder
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert loaded.weights_id.startswith("damsm-")
    tokens = loaded.tokenize(CAPTIONS)
    features = loaded.encode(tokens)
    words, sentence = official_forward(state, tokens["ids"], tokens["lengths"])
    torch.testing.assert_close(features.sentence, sentence, rtol=0, atol=1e-6)
    torch.testing.assert_close(features.words, words, rtol=0, atol=1e-6)


def test_official_pair_round_trips_with_identical_outputs(tmp_path, vocab):
    torch.manual_seed(0)
    text, image = DAMSMTextEncoder(vocab).eval(), DAMSMImageEncoder().eval()
    image_state = {k: v for k, v in image.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(text.state_dict(), tmp_path / "text_encoder200.pth")
    torch.save(image_state, tmp_path / "image_encoder200.pth")  # as a torch < 0.4.1 file: no step counters
    pair = load_damsm(tmp_path / "text_encoder200.pth", vocab=vocab)  # finds the image file beside it
    assert pair.image_file == tmp_path / "image_encoder200.pth"
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for ours, theirs in zip(pair.image_encoder(images), image(images), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        tokens = text.tokenize(CAPTIONS)
        torch.testing.assert_close(pair.text_encoder.encode(tokens).sentence, text.encode(tokens).sentence)


def test_truncated_and_incomplete_files_name_file_and_keys(tmp_path, vocab):
    state = random_state(official_text_layout(len(vocab)))
    path = tmp_path / "text_encoder200.pth"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(T2IGanError, match="text_encoder200.pth.*truncated"):
        load_damsm(path, vocab=vocab, with_image=False)
    del state["rnn.weight_hh_l0_reverse"]
    state["rnn.extra"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(T2IGanError) as info:
        load_damsm(path, vocab=vocab, with_image=False)
    assert str(path) in str(info.value)
    assert "missing keys (1): rnn.weight_hh_l0_reverse" in str(info.value)
    assert "unexpected keys (1): rnn.extra" in str(info.value)


def test_wrong_vocabulary_or_none_is_refused(tmp_path, vocab):
    path = tmp_path / "text_encoder200.pth"
    torch.save(random_state(official_text_layout(len(vocab) + 5)), path)
    with pytest.raises(T2IGanError, match=f"{len(vocab) + 5} words but the vocabulary has {len(vocab)}"):
        load_damsm(path, vocab=vocab, with_image=False)
    with pytest.raises(ConfigError, match="captions.pickle"):
        load_damsm(path, with_image=False)


def test_weights_resolve_under_the_weights_directory(tmp_path, vocab, monkeypatch):
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        load_damsm(vocab=vocab, tag="coco", with_image=False)
    message = str(info.value)
    assert (
        "damsm/coco/text_encoder100.pth" in message
        and 'set weights = "FILE" under [encoders.damsm]' in message
    )
    assert "15Fw-gErCEArOFykW3YTnLKpRcPgI_3AB" in message  # the DF-GAN README's coco metadata link
    folder = tmp_path / "damsm" / "cub"
    folder.mkdir(parents=True)
    torch.save(random_state(official_text_layout(len(vocab))), folder / "text_encoder200.pth")
    encoders = load_damsm(vocab=vocab, tag="cub", with_image=False)
    assert encoders.text_file == folder / "text_encoder200.pth" and encoders.image_encoder is None


def test_our_checkpoint_round_trip_and_builders(tmp_path, vocab):
    torch.manual_seed(1)
    text = DAMSMTextEncoder(vocab, subsample_seed=5).eval()
    image = SmallDAMSMImageEncoder(input_size=32, grid=8, width=8).eval()
    path = save_damsm_checkpoint(tmp_path / "damsm.pt", text, image, stats={"retrieval_top1": 0.93})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damsm.pt"]
    encoders = load_damsm(path)
    assert encoders.stats == {"retrieval_top1": 0.93} and encoders.vocab.words == vocab.words
    assert encoders.config["image_encoder"] == "small" and encoders.text_encoder.subsample_seed == 5
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(encoders.image_encoder(images)[1], image(images)[1], rtol=0, atol=0)
    built = build_damsm({"weights": str(path)})
    assert isinstance(built, DAMSMTextEncoder) and not built.training
    assert not any(p.requires_grad for p in built.parameters())
    features = built.encode_captions(CAPTIONS)
    torch.testing.assert_close(features.sentence, text.encode_captions(CAPTIONS).sentence, rtol=0, atol=0)
    assert isinstance(build_damsm_image_encoder({"weights": str(path)}), SmallDAMSMImageEncoder)
    with pytest.raises(ConfigError, match="image_encoder='inception'"):
        build_damsm_image_encoder({"weights": str(path), "image_encoder": "inception"})
    with pytest.raises(T2IGanError, match="plain JSON"):
        save_damsm_checkpoint(tmp_path / "bad.pt", text, image, stats={"tensor": torch.zeros(1)})


def test_a_text_only_checkpoint_of_ours_is_missing_weights_for_the_image_encoder(tmp_path, vocab):
    """Loaded with the image encoder, it raises the missing-weights error, which the encoder pool answers by
    loading the text encoder alone (a DF-GAN needs no more; R-precision then says what is missing)."""
    path = save_damsm_checkpoint(tmp_path / "damsm.pt", DAMSMTextEncoder(vocab))
    with pytest.raises(WeightsNotFoundError, match=r"damsm\.pt: holds no image encoder"):
        load_damsm(path, with_image=True)
    assert load_damsm(path, with_image=False).image_encoder is None
