"""DF-GAN's presets and reported numbers, as data: the released configs per dataset, and `tiny` for CPU."""

from __future__ import annotations

from dataclasses import replace

from t2igan.specs import Optimizer, PaperResult, Preset, tiny_learning_rates

# Shared by the released configs code/cfg/bird.yml, coco.yml, flower.yml (z_dim, cond_dim, nf, imsize,
# batch_size, truncation/trunc_rate) and code/src/train.py (Adam lr 1e-4 / 4e-4, betas (0.0, 0.9)).
# The MA-GP weight 2.0 and power 6 are in code/lib/modules.py MA_GP.
_RELEASED = {
    "nf": 32,
    "noise_dim": 100,
    "cond_dim": 256,
    "image_size": 256,
    "fusion": "dfblock",
    "magp_weight": 2.0,
    "magp_power": 6.0,
    "truncation": 0.88,  # evaluation noise: truncnorm(-2, 2) * trunc_rate (cfg truncation: True)
}
_ADAM = Optimizer(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9))


def _paper(name: str, dataset: str, max_epoch: int, cfg: str) -> Preset:
    return Preset(
        name=name,
        config=_RELEASED,
        optimizer=replace(_ADAM, epochs=max_epoch),
        image_size=256,
        batch_size=32,  # code/cfg/*.yml batch_size: 32 (per GPU)
        text_encoder="damsm",
        dataset=dataset,
        description=f"released DF-GAN config for {dataset} at 256 px (nf 32)",
        source=f"tobran/DF-GAN code/cfg/{cfg}, code/src/train.py",
    )


PRESETS: dict[str, Preset] = {
    "bird256": _paper("bird256", "cub", 1301, "bird.yml"),  # bird.yml max_epoch: 1301
    "coco256": _paper("coco256", "coco", 301, "coco.yml"),  # coco.yml max_epoch: 301
    "flower256": _paper("flower256", "flowers", 1001, "flower.yml"),  # flower.yml max_epoch: 1001
    "tiny": Preset(
        name="tiny",
        config={**_RELEASED, "nf": 16, "image_size": 32},
        optimizer=tiny_learning_rates(_ADAM),
        image_size=32,
        batch_size=16,
        text_encoder="damsm",
        dataset=None,
        description="32 px, nf 16, learning rates x4 (the tiny rule): the released recipe scaled down for CPU runs",
        source="t2igan (scaled-down released config)",
    ),
}

PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("cub", "fid", 14.81, "tobran/DF-GAN README.md results table", "paper"),
    PaperResult("cub", "fid", 12.10, "tobran/DF-GAN README.md results table", "released model"),
    PaperResult("coco", "fid", 19.32, "tobran/DF-GAN README.md results table", "paper"),
    PaperResult("coco", "fid", 15.41, "tobran/DF-GAN README.md results table", "released model"),
)
