"""RATLIP's presets and reported numbers, as data: the released configs (CUB, Oxford flowers, CelebA-tiny)
and `tiny` for CPU. Everything not listed here is GALIP's (the repositories' lib/* and cfgs agree)."""

from __future__ import annotations

from dataclasses import replace

from t2igan.specs import Optimizer, PaperResult, Preset, tiny_learning_rates

URL = "https://github.com/OxygenLu/RATLIP"  # the presets' sources name files in it

# code/cfg/birds.yml is byte-identical to GALIP's: nf 64, z 100, cond 512, imsize 256, lr 1e-4 / 4e-4,
# sim_w 4.0, ViT-B/32; code/models/RATLIP.py: CLIP_Adapter(..., hidden_size=64), Conv_shuffle with the
# fightingcv ShuffleAttention default G=8; GALIP's NetD/NetC, losses and optimisers (lib/* identical).
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
    "rnn_hidden": 64,
    "rat_mode": "batch_sequence",
    "shuffle_attention": True,
    "sa_groups": 8,
    "sim_weight": 4.0,
    "magp_weight": 2.0,
    "magp_power": 6.0,
}
ADAM = Optimizer(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9))
# The cfgs give batch_size 16 (birds), 4 (flower), 1 (faces), but the README trains with
# code/scripts/train.sh, which passes --batch_size 64 per GPU on 8 GPUs with AMP and overrides them.
SCRIPT_BATCH = 64

TINY = {
    **RELEASED,
    "cond_dim": None,
    "output_size": None,
    "clip_width": None,
    "clip_grid": None,
    "clip_layers": None,
    "num_prompts": None,
    "nf": 16,
    "image_size": 32,
    "code_channels": 32,
    "mid_channels": 16,
    "map_blocks": 2,
    "d_channels": 64,
    "c_hidden": 32,
    "clip_model": "clip-small",
}


def paper_preset(name: str, dataset: str, cfg: str, cfg_batch: int) -> Preset:
    return Preset(
        name=name,
        config=RELEASED,
        optimizer=replace(ADAM, epochs=1502),  # birds.yml, flower.yml, faces.yml max_epoch: 1502
        image_size=256,
        batch_size=SCRIPT_BATCH,
        text_encoder="clip",
        dataset=dataset,
        description=(
            f"released config for {dataset}: 256 px data, 224 px output, CLIP ViT-B/32; train.sh batch 64 "
            f"per GPU x 8 GPUs with AMP (the cfg's batch_size {cfg_batch} is overridden)"
        ),
        source=f"{URL} code/cfg/{cfg}, code/scripts/train.sh, code/models/RATLIP.py",
    )


PRESETS: dict[str, Preset] = {
    "cub": paper_preset("cub", "cub", "birds.yml", 16),
    "flowers": paper_preset("flowers", "flowers", "flower.yml", 4),  # flower.yml also has state_epoch 275
    "celeba-tiny": paper_preset("celeba-tiny", "celeba-tiny", "faces.yml", 1),  # faces.yml: state_epoch 5
    "tiny": Preset(
        name="tiny",
        config=TINY,
        optimizer=tiny_learning_rates(ADAM),
        image_size=32,
        batch_size=16,
        text_encoder="clip",
        dataset=None,
        description="32 px, nf 16, 2 M_Blocks, sized from the small CLIP it is given, learning rates x4 (the tiny rule)",
        source="t2igan (scaled-down released config)",
    ),
}

_README = "OxygenLu/RATLIP readme.md results tables"
_CS = "README prints CLIP score x100; stored as the raw mean cosine"
PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("cub", "fid", 13.28, _README),
    PaperResult("celeba-tiny", "fid", 81.48, _README),
    PaperResult("cub", "clip_score", 0.3203, _README, _CS),
    PaperResult("flowers", "clip_score", 0.3194, _README, _CS),
    PaperResult("celeba-tiny", "clip_score", 0.2891, _README, _CS),
)
