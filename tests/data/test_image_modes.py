"""Images and captions are read correctly or refused: every image mode Pillow opens from a file is
converted to the 8-bit RGB an independent conversion gives, or refused with the reason; a caption file
that is not UTF-8 is refused naming its line, or read with replacement characters when asked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2igan.data.commands import check_dataset, load_split
from t2igan.data.split import read_image_file
from t2igan.errors import T2IGanError
from tests.layouts import write_cub

SIZE = (7, 5)  # (width, height): small and odd, so rows and columns cannot be confused


def pixels(shape, seed, high=256, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, high, size=shape, dtype=np.int64).astype(dtype)


def rgb_of(path) -> np.ndarray:
    return np.asarray(read_image_file(path))


def test_16_bit_grey_keeps_its_top_8_bits(tmp_path):
    grey = pixels((SIZE[1], SIZE[0]), 1, high=65536, dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    with Image.open(path) as opened:
        assert opened.mode.startswith("I;16")  # as Pillow opens a 16-bit grey PNG
        assert np.asarray(opened.convert("RGB")).mean() > 250  # the naive conversion: almost white
    expected = np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2)
    assert np.array_equal(rgb_of(path), expected)


def test_palette_images_take_their_colours_from_the_palette(tmp_path):
    index = pixels((SIZE[1], SIZE[0]), 2, high=16)
    palette = pixels((256, 3), 3)
    image = Image.fromarray(index, "P")
    image.putpalette(palette.flatten().tolist())
    path = tmp_path / "palette.png"
    image.save(path)
    assert np.array_equal(rgb_of(path), palette[index])


@pytest.mark.parametrize(("mode", "channels"), [("RGBA", 4), ("LA", 2)])
def test_alpha_is_dropped_as_the_official_convert_drops_it(tmp_path, mode, channels):
    data = pixels((SIZE[1], SIZE[0], channels), 4)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(data, mode).save(path)
    colour = data[..., :3] if mode == "RGBA" else np.repeat(data[..., :1], 3, axis=2)
    assert np.array_equal(rgb_of(path), colour)


def test_cmyk_is_converted_by_the_multiplicative_rule(tmp_path):
    cmyk = pixels((SIZE[1], SIZE[0], 4), 5)
    path = tmp_path / "cmyk.tiff"
    Image.fromarray(cmyk, "CMYK").save(path)
    ink, black = cmyk[..., :3].astype(np.float64), cmyk[..., 3:].astype(np.float64)
    expected = np.rint((255 - ink) * (255 - black) / 255).astype(np.uint8)
    assert np.abs(rgb_of(path).astype(int) - expected.astype(int)).max() <= 1  # Pillow's integer rounding


@pytest.mark.parametrize(
    ("mode", "array", "reason"),
    [
        ("I", pixels((SIZE[1], SIZE[0]), 6, high=2**20, dtype=np.int32), "32-bit integer pixels"),
        ("F", np.random.default_rng(7).random((SIZE[1], SIZE[0])).astype(np.float32), "32-bit float pixels"),
    ],
)
def test_pixels_whose_range_no_file_states_are_refused(tmp_path, mode, array, reason):
    path = tmp_path / f"{mode}.tiff"
    Image.fromarray(array, mode).save(path)
    with Image.open(path) as opened:
        assert opened.mode == mode
    with pytest.raises(
        T2IGanError, match=rf"image {path}: mode {mode} \({reason}, whose range the file does not"
    ):
        read_image_file(path)


def _cub_with_a_latin1_caption(root):
    tree = write_cub(root)
    key = tree.keys["train"][0]
    caption = root / "text" / f"{key}.txt"
    lines = caption.read_text(encoding="utf-8").splitlines()
    lines[2] = "a bird with a caf\xe9 coloured breast"
    caption.write_bytes("\n".join(lines).encode("latin-1"))
    return tree, caption


def test_a_caption_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    _, caption = _cub_with_a_latin1_caption(tmp_path / "cub")
    with pytest.raises(T2IGanError) as caught:
        load_split("cub", "train", tmp_path / "cub")
    message = str(caught.value)
    assert message.startswith(f"caption file {caption}: line 3 is not UTF-8 (byte 0xe9)")
    assert "--data cub:caption_errors=replace" in message


def test_data_check_reports_it_and_the_option_reads_it_with_replacement_characters(tmp_path):
    tree, caption = _cub_with_a_latin1_caption(tmp_path / "cub")
    report = check_dataset("cub", tmp_path / "cub", progress=False)
    assert not report.ok
    problems = [p for split in report.splits for p in split.problems]
    assert any(p.startswith(f"caption file {caption}: line 3 is not UTF-8") for p in problems)
    split = load_split("cub", "train", tmp_path / "cub", caption_errors="replace")
    record = next(r for r in split.records if caption.stem in r.key)
    assert "a bird with a caf\ufffd coloured breast" in record.captions
    assert any("read with replacement characters" in note and "line 3" in note for note in split.notes)
    assert len(split) == len(tree.keys["train"])
