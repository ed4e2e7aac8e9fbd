"""The named training budgets of a plan (no torch: the command-line parser lists them)."""

# Steps per run for the named budgets; `paper` trains for the preset's own `max_epoch`.
#
# 6,000 steps (`--steps 6000`; benchmarks/plans/shapes.toml and alrgan-ablation.toml use it; it was `short`
# until 2026-11-29) is where every model beats chance on every `shapes` attribute by a wide margin: at 3,000
# steps (about five epochs at the tiny presets' batch 16) DF-GAN's main shape was 0.245 and its count 0.333,
# at 6,000 0.374 and 0.475, all-correct 0.139 -> 0.301 (seed 0, shapes v3). Chance (the best text-blind
# constant answer) is 0.175 for shape and 0.5 for count: the count is scored only where a caption lists extras
# (2 or 3). Its grids show coloured blobs of the right size in the right place, not yet shapes.
#
# `short` is where the shapes themselves become recognisable (issue #5: "sample grids show recognisable
# shapes"): DF-GAN (tiny, seed 2, shapes v4) trained on from its 6,000-step run: main shape 0.359 at 6,000
# steps, 0.435 at 10,000, 0.538 at 13,000, 0.607 at 18,000 (all-correct 0.260 -> 0.309 -> 0.442 -> 0.514;
# chance 0.170); the 18,000-step grids show stars, crosses and squares. RAT-GAN (seed 2) the same way:
# 0.320 at 6,000, 0.516 at 10,000, 0.539 at 13,000, 0.646 at 18,000 (all-correct 0.245 -> 0.552; its grid:
# triangles, stars, squares, a plus). A wider DF-GAN (nf 32) or one at 64 px did not get there at 6,000
# steps (shape 0.394, 0.364). 18,000 steps are about 30 epochs of the 10,000 training images. Trained
# for 18,000 steps from scratch: DF-GAN seeds 0-2 shape 0.633 ± 0.027, all-correct 0.500 ± 0.062; RAT-GAN
# seeds 0 and 1 shape 0.602 / 0.666, all-correct 0.505 / 0.547 (benchmarks/plans/shapes-short.toml has
# the table).
BUDGET_STEPS = {"smoke": 300, "short": 18000}
BUDGETS = (*BUDGET_STEPS, "paper")
