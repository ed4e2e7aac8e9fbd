"""GALIP's presets and reported numbers, as data: the released configs (CUB, COCO) and `tiny` for CPU."""

from __future__ import annotations

from dataclasses import replace

from t2igan.specs import Optimizer, PaperResult, Preset, tiny_learning_rates

URL = "https://github.com/tobran/GALIP"  # the presets' sources name files in it

# code/cfg/birds.yml, coco.yml: nf 64, z_dim 100, cond_dim 512, imsize 256, lr_g 1e-4, lr_d 4e-4, sim_w 4.0,
# clip4trn ViT-B/32; code/src/train.py: Adam betas (0.0, 0.9); code/lib/modules.py MA_GP: 2.0 * mean(||g||^6).
# code/models/GALIP.py: code 64 x 7 x 7, mid 32, 4 M_Blocks, CLIP layers [1,4,8], prompts at blocks 1..8,
# NetD main 768 -> 512, NetC hidden 128, output 224 px.
RELEASED = {
    "nf": 64,
    "noise_dim": 100,
    "cond_dim": 512,
    "image_size": 256,
    "output_size": 224,
    "code_channels": 64,
    "mid_channels": 32,
    "map_blocks": 4,
    "d_channels": 512,
    "c_hidden": 128,
    "clip_model": "ViT-B-32",
    "clip_width": 768,
    "clip_grid": 7,
    "clip_layers": (1, 4, 8),
    "num_prompts": 8,
    "fusion": "dfblk",
    "g_fusion": "dfblk",
    "sim_weight": 4.0,
    "magp_weight": 2.0,
    "magp_power": 6.0,
}
ADAM = Optimizer(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9))

# The cfgs say batch_size 16, but code/scripts/train.sh passes --batch_size 64 per GPU on 8 GPUs with AMP
# (command line overrides the yaml): 64 per process, 512 in all. The preset's batch is the per-process 64.
SCRIPT_BATCH = 64
BATCH_NOTE = "train.sh: 64 per GPU x 8 GPUs, mixed precision (the cfg's batch_size 16 is overridden)"

# Sizes left to the encoder: `tiny` uses whatever small CLIP it is given (clip-small on shapes).
SIZED_BY_ENCODER = {
    "cond_dim": None,
    "output_size": None,
    "clip_width": None,
    "clip_grid": None,
    "clip_layers": None,
    "num_prompts": None,
}
TINY = {
    **RELEASED,
    **SIZED_BY_ENCODER,
    "nf": 16,
    "image_size": 32,
    "code_channels": 32,
    "mid_channels": 16,
    "map_blocks": 2,
    "d_channels": 64,
    "c_hidden": 32,
    "clip_model": "clip-small",
}


def paper_preset(name: str, dataset: str, max_epoch: int, cfg: str, url: str = URL, **changes) -> Preset:
    return Preset(
        name=name,
        config={**RELEASED, **changes},
        optimizer=replace(ADAM, epochs=max_epoch),
        image_size=256,
        batch_size=SCRIPT_BATCH,
        text_encoder="clip",
        dataset=dataset,
        description=f"released config for {dataset}: 256 px data, 224 px output, CLIP ViT-B/32; {BATCH_NOTE}",
        source=f"{url} code/cfg/{cfg}, code/scripts/train.sh, code/models/GALIP.py",
    )


def tiny_preset(description: str) -> Preset:
    return Preset(
        name="tiny",
        config=TINY,
        optimizer=tiny_learning_rates(ADAM),
        image_size=32,
        batch_size=16,
        text_encoder="clip",
        dataset=None,
        description=description,
        source="t2igan (scaled-down released config)",
    )


PRESETS: dict[str, Preset] = {
    "cub": paper_preset("cub", "cub", 1502, "birds.yml"),  # birds.yml max_epoch: 1502
    "coco": paper_preset("coco", "coco", 3005, "coco.yml"),  # coco.yml max_epoch: 3005
    "tiny": tiny_preset(
        "32 px, nf 16, 2 M_Blocks, sized from the small CLIP it is given, learning rates x4 (the tiny rule)"
    ),
}

PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("coco", "fid", 5.85, "tobran/GALIP README.md results table", "paper"),
    PaperResult("coco", "clip_score", 0.3338, "tobran/GALIP README.md results table", "paper"),
    PaperResult("coco", "fid", 5.01, "tobran/GALIP README.md results table", "released model"),
    PaperResult("coco", "clip_score", 0.3379, "tobran/GALIP README.md results table", "released model"),
    PaperResult(
        "coco", "fid", 12.54, "tobran/GALIP README.md results table", "CC12M-trained model, zero-shot on COCO"
    ),
    PaperResult("cub", "fid", 10.08, "paperswithcode page of arXiv:2301.12959 (secondary source)", "paper"),
    PaperResult("cub", "fid", 10.00, "OxygenLu/RATLIP readme.md comparison table", "as quoted by RATLIP"),
    PaperResult(
        "cub", "clip_score", 0.3160, "OxygenLu/RATLIP readme.md comparison table", "as quoted by RATLIP"
    ),
)
