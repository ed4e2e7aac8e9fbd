"""ALR-GAN's presets as data: CUB and COCO on the AttnGAN backbone the paper builds on, and `tiny` for CPU.

The paper (IEEE TMM 2023) publishes no code or config. Backbone sizes, optimiser, epochs and the DAMSM
weight are AttnGAN's released configs (taoxugit/AttnGAN code/cfg/bird_attn2.yml, coco_attn2.yml,
code/miscc/config.py, code/trainer.py); the ALR/LVR values the paper does not give us are our choices,
marked as such. No paper-reported numbers are recorded: we have not read the paper's tables.
"""

from __future__ import annotations

from dataclasses import replace

from t2igan.specs import Optimizer, PaperResult, Preset, tiny_learning_rates

_COMMON = {
    "noise_dim": 100,  # AttnGAN cfg GAN.Z_DIM: 100
    "condition_dim": 100,  # AttnGAN code/miscc/config.py GAN.CONDITION_DIM (default, not overridden)
    "sentence_dim": 256,  # AttnGAN cfg TEXT.EMBEDDING_DIM: 256 (DAMSM)
    "word_dim": 256,
    "stages": 3,  # AttnGAN cfg TREE.BRANCH_NUM: 3 (64, 128, 256)
    "base_size": 64,  # AttnGAN code/miscc/config.py TREE.BASE_SIZE
    "image_size": 256,
    "kl_weight": 1.0,  # AttnGAN code/trainer.py: errG_total += KL_loss(mu, logvar), unweighted
    # ALR-GAN terms. The paper sums L_ALR and L_LVR with weight 1 (docs/official-code.md, ALR-GAN);
    # λ1 (L_REC) and γ are not in the text we hold: 1.0 each is our choice (γ in units of 1/K, see alr.py).
    "alr": True,
    "lvr": True,
    "alr_weight": 1.0,
    "lvr_weight": 1.0,
    "lambda_rec": 1.0,
    "gamma": 1.0,
    "alr_hidden": 32,  # width of φ_α / φ_β: our choice
    # Channels the ALR residual (one per word) is padded to, with H*: None sizes it from the text
    # encoder's `max_words` (DAMSM keeps at most 18 words, t2igan.text.damsm WORDS_NUM; AttnGAN's COCO
    # config reads 12, which the text encoder, not this model, decides).
    "max_words": None,
    "lvr_mask_threshold": 1.0,  # a region is in the layout at ≥ 1× the mean word weight: our choice
    # LVR compares the stage features H, H* (the paper's LVR loss); "small"/"vgg16" are image-feature
    # variants of ours (plugins/alrgan/lvr.py), `lvr_vgg_weights` the VGG-16 file for the latter
    "lvr_features": "hidden",
    "lvr_vgg_weights": None,
    # The paper's L_D has no mismatched-text term; AttnGAN's discriminator_loss has one (real image,
    # next caption). False follows the paper; True gives AttnGAN's (real+cond)/2 + (fake+cond+wrong)/3.
    "d_mismatch": False,
}


# AttnGAN cfg TRAIN.GENERATOR_LR / DISCRIMINATOR_LR: 0.0002; code/trainer.py: optim.Adam(..., betas=(0.5,
# 0.999)) for G and every D
_ADAM = Optimizer(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999))


def _paper(name: str, dataset: str, cfg: str, batch: int, max_epoch: int, **values) -> Preset:
    return Preset(
        name=name,
        config={**_COMMON, **values},
        optimizer=replace(_ADAM, epochs=max_epoch),
        image_size=256,
        batch_size=batch,
        text_encoder="damsm",
        dataset=dataset,
        description=f"ALR-GAN on {dataset} at 64/128/256 px on the AttnGAN {cfg} backbone",
        source=f"ALR-GAN paper (IEEE TMM 2023) losses; taoxugit/AttnGAN code/cfg/{cfg} sizes and schedule",
    )


PRESETS: dict[str, Preset] = {
    # bird_attn2.yml: GF_DIM 32, DF_DIM 64, R_NUM 2, LAMBDA 5.0, BATCH_SIZE 20, MAX_EPOCH 600
    "cub": _paper(
        "cub",
        "cub",
        "bird_attn2.yml",
        20,
        ngf=32,
        ndf=64,
        residual_blocks=2,
        damsm_lambda=5.0,
        max_epoch=600,
    ),
    # coco_attn2.yml: GF_DIM 48, DF_DIM 96, R_NUM 3, LAMBDA 50.0, BATCH_SIZE 14, MAX_EPOCH 120
    "coco": _paper(
        "coco",
        "coco",
        "coco_attn2.yml",
        14,
        ngf=48,
        ndf=96,
        residual_blocks=3,
        damsm_lambda=50.0,
        max_epoch=120,
    ),
    "tiny": Preset(
        name="tiny",
        config={
            **_COMMON,
            "ngf": 16,
            "ndf": 16,
            "residual_blocks": 1,
            "stages": 2,
            "base_size": 32,
            "image_size": 64,
            "sentence_dim": None,  # None: sized from the text encoder it is given
            "word_dim": None,
            "damsm_lambda": 5.0,
            "alr_hidden": 16,
        },
        optimizer=tiny_learning_rates(_ADAM),
        image_size=64,
        batch_size=16,
        text_encoder="damsm",
        dataset=None,
        description=(
            "two stages 32→64 px, ngf 16, one residual block, learning rates x4 (the tiny rule): CPU runs"
        ),
        source="t2igan (scaled-down AttnGAN backbone with the ALR-GAN losses)",
    ),
}

PAPER_RESULTS: tuple[PaperResult, ...] = ()
