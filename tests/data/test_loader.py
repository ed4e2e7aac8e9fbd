"""The loader: images in [-1, 1] at imsize, one caption per image per epoch drawn from (seed, epoch), and
the official RandomCrop + flip for crop_flip datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2igan.data.cache import ensure_image_cache
from t2igan.data.layouts import load_coco_split, load_cub_split
from t2igan.data.loader import CachedImageDataset, dataset_for_split, epoch_choices, make_dataloader
from t2igan.data.shapes import load_shapes_split
from t2igan.errors import ConfigError


@pytest.fixture
def shapes_dataset():
    split = load_shapes_split(None, "train", size=24, seed=2)
    return split, dataset_for_split(split, 32, seed=7, progress=False)


def test_items_are_images_in_range_with_indices(shapes_dataset):
    split, dataset = shapes_dataset
    image, index, caption = dataset[5]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert index == 5 and 0 <= caption < split.captions_per_image
    expected = torch.from_numpy(np.array(split.load_image(5, 32))).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(image, expected)  # shapes: no augmentation


def test_caption_choice_is_a_function_of_seed_and_epoch(shapes_dataset):
    _, dataset = shapes_dataset
    first = [dataset[i][2] for i in range(len(dataset))]
    assert first == [dataset[i][2] for i in range(len(dataset))]
    dataset.set_epoch(1)
    second = [dataset[i][2] for i in range(len(dataset))]
    assert second != first
    dataset.set_epoch(0)
    assert [dataset[i][2] for i in range(len(dataset))] == first
    other_seed = epoch_choices(8, 0, len(dataset), 10, 32, 32, augment=False).captions.tolist()
    assert other_seed != first
    assert len(set(first + second)) > 3  # several caption indices are drawn


def test_crop_flip_takes_a_random_crop_of_the_load_size_image(cub_tree):
    split = load_cub_split(cub_tree.root, "train")
    cache = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    dataset = CachedImageDataset(cache, 10, augmentation="crop_flip", seed=0)
    seen_offsets, seen_flips = set(), set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            image = dataset[i][0]
            top, left = dataset.choices.offsets[i]
            crop = cache.image(i)[top : top + 32, left : left + 32]
            if dataset.choices.flips[i]:
                crop = crop[:, ::-1]
            expected = torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 127.5 - 1
            assert torch.allclose(image, expected)
            seen_offsets.add((int(top), int(left)))
            seen_flips.add(bool(dataset.choices.flips[i]))
    assert all(0 <= top <= 6 and 0 <= left <= 6 for top, left in seen_offsets)  # load size int(32*76/64) = 38
    assert len(seen_offsets) > 5 and seen_flips == {True, False}


@pytest.mark.parametrize("coco_tree", ["dfgan"], indirect=True)  # one image layout is enough here
def test_crop_flip_crops_range_over_the_whole_width_of_a_wide_image(coco_tree):
    """A 96x72 COCO image at 32 px is stored 50x38 (shorter side to int(32*76/64)); RandomCrop(32) draws
    its left edge from 0..18 and its top from 0..6, as torchvision does on the resized image."""
    split = load_coco_split(coco_tree.root, "test")
    cache = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    assert all(cache.image(i).shape == (38, 50, 3) for i in range(len(split)))
    dataset = CachedImageDataset(cache, 5, augmentation="crop_flip", seed=0)
    tops, lefts = set(), set()
    for epoch in range(20):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            top, left = (int(v) for v in dataset.choices.offsets[i])
            crop = cache.image(i)[top : top + 32, left : left + 32]
            if dataset.choices.flips[i]:
                crop = crop[:, ::-1]
            expected = torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 127.5 - 1
            assert torch.allclose(dataset[i][0], expected)
            tops.add(top)
            lefts.add(left)
    assert max(tops) <= 6 and min(tops) == 0 and max(lefts) <= 18
    assert max(lefts) > 12 and min(lefts) < 6  # beyond the centre square's 6..12: the whole width is used
    dataset.augmentation = "none"
    dataset.set_epoch(0)
    assert tuple(dataset.choices.offsets[0]) == (3, 9)  # the centre crop, as CenterCrop rounds it


def test_dataloader_is_reproducible_and_workers_agree(shapes_dataset):
    _, dataset = shapes_dataset
    batches = [
        (img.clone(), idx.clone(), cap.clone()) for img, idx, cap in make_dataloader(dataset, 8, epoch=3)
    ]
    again = list(make_dataloader(dataset, 8, epoch=3, num_workers=2))
    assert len(batches) == 3 and len(again) == 3
    for (a, ia, ca), (b, ib, cb) in zip(batches, again, strict=True):
        assert torch.equal(ia, ib) and torch.equal(ca, cb) and torch.equal(a, b)
    other = next(iter(make_dataloader(dataset, 8, epoch=4)))[1]
    assert not torch.equal(other, batches[0][1])


def test_bad_augmentation_is_refused(shapes_dataset):
    split, dataset = shapes_dataset
    cache = ensure_image_cache(split, 32, progress=False)
    with pytest.raises(ConfigError, match="augmentation"):
        CachedImageDataset(cache, 10, augmentation="jitter")
