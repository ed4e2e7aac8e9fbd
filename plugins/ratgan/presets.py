"""RAT-GAN's presets and reported numbers, as data: the released configs per dataset, and `tiny` for CPU."""

from __future__ import annotations

from dataclasses import replace

from t2igan.specs import Optimizer, PaperResult, Preset, tiny_learning_rates

# code/cfg/bird.yml, coco.yml, flower.yml: NF 64, BATCH_SIZE 24, BASE_SIZE 256, EMBEDDING_DIM 256;
# code/main.py: noise 100, Adam lr 1e-4 (G) / 4e-4 (D), betas (0.0, 0.9), MA-GP 2.0 * mean(||g||^6),
# evaluation noise torch.randn (no truncation).
_RELEASED = {
    "nf": 64,
    "noise_dim": 100,
    "cond_dim": 256,
    "image_size": 256,
    "fusion": "rat",
    "affines_per_block": 4,  # code/model.py G_Block.residual: affine0..3
    "official_unused_layers": True,  # keep affine4/5, fea_l, fea_ll: official counts and strict loading
    "d_attention": False,  # the released NetD uses the plain concat head (COND_DNET)
    "magp_weight": 2.0,
    "magp_power": 6.0,
    "truncation": None,
}
_ADAM = Optimizer(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9))


def _paper(name: str, dataset: str, max_epoch: int, cfg: str, **changes) -> Preset:
    return Preset(
        name=name,
        config={**_RELEASED, **changes},
        optimizer=replace(_ADAM, epochs=max_epoch),
        image_size=256,
        batch_size=24,  # code/cfg/*.yml TRAIN.BATCH_SIZE: 24
        text_encoder="damsm",
        dataset=dataset,
        description=f"released RAT-GAN config for {dataset} at 256 px (nf 64)",
        source=f"senmaoy/Recurrent-Affine-Transformation-for-Text-to-image-Synthesis code/cfg/{cfg}, code/main.py",
    )


PRESETS: dict[str, Preset] = {
    "bird256": _paper("bird256", "cub", 601, "bird.yml"),  # bird.yml MAX_EPOCH: 601
    "coco256": _paper("coco256", "coco", 121, "coco.yml"),  # coco.yml MAX_EPOCH: 121
    # flower.yml MAX_EPOCH: 601; code/model_flower.py adds affine4/affine5 to the forward (6 per block)
    "flower256": _paper("flower256", "flowers", 601, "flower.yml", affines_per_block=6),
    "tiny": Preset(
        name="tiny",
        config={**_RELEASED, "nf": 16, "image_size": 32, "official_unused_layers": False},
        optimizer=tiny_learning_rates(_ADAM),
        image_size=32,
        batch_size=16,
        text_encoder="damsm",
        dataset=None,
        description="32 px, nf 16, no official unused layers, learning rates x4 (the tiny rule): CPU runs",
        source="t2igan (scaled-down released config)",
    ),
}

PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult(
        "coco",
        "fid",
        14.6,
        "paperswithcode page of arXiv:2204.10482 (secondary source; the paper's table was not read)",
        "FID computed with the author's StackGAN-derived code, not the torchvision-Inception FID of DF-GAN",
    ),
)
