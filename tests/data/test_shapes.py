"""`shapes`: deterministic, held-out combinations kept out of train, captions that name the main object,
and pixels that agree with the attributes."""

from __future__ import annotations

import numpy as np
import pytest

from t2igan.data import shapes
from t2igan.data.shapes import (
    COLOUR_WORDS,
    COLOURS,
    HELDOUT_COMBOS,
    MAX_CAPTION_WORDS,
    POSITIONS,
    SHAPE_WORDS,
    load_shapes_split,
)
from t2igan.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return {split: load_shapes_split(None, split, size="small", seed=0) for split in ("train", "test")}


def test_sizes_of_the_named_options():
    tiny = load_shapes_split(None, "train", size="tiny")
    assert len(tiny) == shapes.SPLIT_SIZES["tiny"]["train"] and 100 <= len(tiny) <= 1000
    assert shapes.SPLIT_SIZES["default"]["train"] >= 10_000 and shapes.SPLIT_SIZES["default"]["test"] >= 2_000
    assert len(load_shapes_split(None, "test", size=37)) == 37
    with pytest.raises(ConfigError, match="size='huge'"):
        load_shapes_split(None, "train", size="huge")


def test_same_seed_same_split_and_pixels_other_seed_differs():
    a = load_shapes_split(None, "train", size="tiny", seed=3)
    b = load_shapes_split(None, "train", size="tiny", seed=3)
    c = load_shapes_split(None, "train", size="tiny", seed=4)
    assert a.sha256 == b.sha256 and a.sha256 != c.sha256
    assert [r.attributes for r in a.records] == [r.attributes for r in b.records]
    assert np.array_equal(np.asarray(a.load_image(5, 64)), np.asarray(b.load_image(5, 64)))
    assert a.manifest()["preprocessing"]["seed"] == 3 and a.manifest()["preprocessing"]["version"] >= 1


def test_heldout_combinations_never_appear_in_train(small):
    for record in small["train"].records:
        attrs = record.attributes
        assert (attrs["main_colour"], attrs["main_shape"]) not in HELDOUT_COMBOS
        assert not attrs["heldout_combo"]
        for obj in attrs["objects"]:
            assert (obj["colour"], obj["shape"]) not in HELDOUT_COMBOS


def test_test_split_mixes_heldout_and_seen_and_flags_them(small):
    flags = []
    for record in small["test"].records:
        attrs = record.attributes
        assert attrs["heldout_combo"] == ((attrs["main_colour"], attrs["main_shape"]) in HELDOUT_COMBOS)
        flags.append(attrs["heldout_combo"])
    assert 0.3 < np.mean(flags) < 0.7
    seen = {(r.attributes["main_colour"], r.attributes["main_shape"]) for r in small["test"].records}
    assert set(HELDOUT_COMBOS) <= seen


def test_every_colour_and_shape_is_still_seen_in_train(small):
    mains = {(r.attributes["main_colour"], r.attributes["main_shape"]) for r in small["train"].records}
    assert {c for c, _ in mains} == set(COLOURS) and {s for _, s in mains} == set(shapes.SHAPES)


def test_captions_name_the_main_object_and_are_short(small):
    for record in small["train"].records[:400] + small["test"].records[:200]:
        attrs = record.attributes
        assert len(record.captions) == 10
        for caption in record.captions:
            words = caption.replace(",", " ").split()
            assert len(words) <= MAX_CAPTION_WORDS
            assert set(words) & set(COLOUR_WORDS[attrs["main_colour"]]), caption
            assert set(words) & set(SHAPE_WORDS[attrs["main_shape"]]), caption


def test_extras_are_mentioned_in_some_captions(small):
    record = next(r for r in small["train"].records if r.attributes["object_count"] == 3)
    extra = record.attributes["objects"][0]
    mentions = [
        c
        for c in record.captions
        if set(c.split()) & set(SHAPE_WORDS[extra["shape"]])
        and set(c.split()) & set(COLOUR_WORDS[extra["colour"]])
    ]
    assert 1 <= len(mentions) < 10


def test_attributes_cover_the_probe_targets(small):
    counts = {name: set() for name in shapes.ATTRIBUTE_CLASSES}
    for record in small["train"].records:
        attrs = record.attributes
        assert attrs["object_count"] == len(attrs["objects"])
        main = attrs["objects"][-1]
        assert (main["colour"], main["shape"]) == (attrs["main_colour"], attrs["main_shape"])
        assert all(o["diameter"] < main["diameter"] for o in attrs["objects"][:-1])  # main is the largest
        for name in counts:
            counts[name].add(attrs[name])
    for name, classes in shapes.ATTRIBUTE_CLASSES.items():
        assert counts[name] == set(classes), name


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_pixels_agree_with_the_attributes(size, small):
    for record in small["test"].records[:20]:
        attrs = record.attributes
        main = attrs["objects"][-1]
        image = np.asarray(shapes.render_scene(attrs, size))
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        centre = image[int(main["y"] * size), int(main["x"] * size)]
        assert tuple(centre) == COLOURS[attrs["main_colour"]]  # the main object is drawn last, on top
        row, col = divmod(POSITIONS.index(attrs["main_position"]), 3)
        assert int(main["x"] * 3) == col and int(main["y"] * 3) == row


def test_render_through_the_split_interface(small):
    split = small["test"]
    assert split.load_image(0).size == (split.native_size, split.native_size)
    assert split.load_image(0, 32).mode == "RGB" and split.load_image(0, 32).size == (32, 32)


def test_each_caption_lists_the_attributes_it_leaves_unstated(small):
    """The probe scores a generated image only on what its caption says: background and size are named by
    some templates and not others, colour and shape by all, the count (a number word, or the extras listed)
    by four of the ten, for scenes of one object as for those of two or three."""
    import re

    from t2igan.data.shapes import BACKGROUND_WORDS, COUNT_WORDS, SIZE_WORDS

    def names(caption, words):
        return any(re.search(rf"\b{w}\b", caption) for w in words)

    checked = 0
    for record in small["train"].records[:100]:
        attrs = record.attributes
        assert len(attrs["caption_attributes"]) == len(record.captions)
        for caption, unstated in zip(record.captions, attrs["caption_attributes"], strict=True):
            assert set(unstated.values()) <= {None}
            assert "main_colour" not in unstated and "main_shape" not in unstated
            assert ("background" in unstated) != names(caption, BACKGROUND_WORDS[attrs["background"]])
            assert ("main_size" in unstated) != names(caption, SIZE_WORDS[attrs["main_size"]])
            checked += 1
        stating = [
            c
            for c, u in zip(record.captions, attrs["caption_attributes"], strict=True)
            if "object_count" not in u
        ]
        assert len(stating) == 4  # four captions of every scene state the count, alone or not
        words = COUNT_WORDS[attrs["object_count"]]
        if attrs["object_count"] == 1:
            assert all(caption.startswith(words) for caption in stating), stating
        else:
            assert sum(caption.startswith(words[0] + " shapes") for caption in stating) == 1, stating
    assert checked == 1000


def test_every_extra_sits_in_the_cell_its_captions_name(small):
    """Extras are placed in a free cell of the 3x3 grid and the captions that list them say which, so a
    generator can learn where they go (with random places no model learned to draw the count)."""
    from t2igan.data.shapes import EXTRA_POSITION_WORDS

    listed = 0
    for record in small["test"].records[:300]:
        objects = record.attributes["objects"]
        cells = [o["position"] for o in objects]
        assert len(set(cells)) == len(cells)  # one object per cell
        assert all(
            cell in EXTRA_POSITION_WORDS for cell in cells[:-1]
        )  # an outer cell, named by a compass word
        for obj in objects:
            row, col = divmod(POSITIONS.index(obj["position"]), 3)
            assert int(obj["x"] * 3) == col and int(obj["y"] * 3) == row
        unstated = record.attributes["caption_attributes"]
        for caption, missing in zip(record.captions, unstated, strict=True):
            if "object_count" in missing:
                continue
            for extra in objects[:-1]:
                phrases = [
                    f"{c} {s} {p}"
                    for c in COLOUR_WORDS[extra["colour"]]
                    for s in SHAPE_WORDS[extra["shape"]]
                    for p in EXTRA_POSITION_WORDS[extra["position"]]
                ]
                assert any(p in caption for p in phrases), (caption, extra)
            listed += 1
    assert listed > 200


def test_the_longest_default_caption_fits_the_text_encoders():
    """clip-small's context and DAMSM's 18 words hold every caption of the default split, so none is cut."""
    import json

    from open_clip.tokenizer import SimpleTokenizer

    from t2igan.text.clip import CONFIG_DIR

    context = json.loads((CONFIG_DIR / "clip-small.json").read_text())["text_cfg"]["context_length"]
    tokenizer = SimpleTokenizer()
    longest_words = longest_tokens = 0
    for split in ("train", "test"):
        for record in load_shapes_split(None, split).records:
            for caption in record.captions:
                longest_words = max(longest_words, len(caption.replace(",", " ").split()))
                longest_tokens = max(longest_tokens, len(tokenizer.encode(caption)) + 2)  # + start, end
    assert longest_words <= MAX_CAPTION_WORDS
    assert longest_tokens <= context


def test_extras_positions_share_no_word_with_the_main_objects():
    """A position word in a caption always means the main object (see EXTRA_POSITION_WORDS)."""
    from t2igan.data.shapes import EXTRA_POSITION_WORDS, POSITION_WORDS

    def words(table):
        return {w for phrases in table.values() for phrase in phrases for w in phrase.split()}

    assert words(EXTRA_POSITION_WORDS) & words(POSITION_WORDS) <= {"to", "the", "at", "in", "on"}
    assert words(EXTRA_POSITION_WORDS) - {"to", "the"}
