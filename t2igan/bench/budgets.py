"""The named training budgets of a plan (no torch: the command-line parser lists them)."""

# Steps per run for the named budgets; `paper` trains for the preset's own `max_epoch`. `short` is where
# every model should beat chance on every `shapes` attribute by a wide margin: at 3,000 steps (about five
# epochs at the tiny presets' batch 16) DF-GAN's main shape was 0.245 and its count 0.333, at 6,000 0.374
# and 0.475, all-correct 0.139 -> 0.301 (seed 0, shapes v3). Chance (the best text-blind constant answer)
# is 0.175 for shape and 0.5 for count: the count is scored only where a caption lists extras (2 or 3).
#
# `medium` is where the shapes themselves become recognisable: DF-GAN (tiny, seed 2, shapes v4) trained on
# from its `short` run: main shape 0.359 at 6,000 steps, 0.435 at 10,000, 0.538 at 13,000, 0.607 at 18,000
# (all-correct 0.260 -> 0.309 -> 0.442 -> 0.514; chance 0.170); the 6,000-step grids show coloured blobs in the
# right place, the 18,000-step grids stars, crosses and squares. A wider DF-GAN (nf 32) or one at 64 px did not
# get there at 6,000 steps (shape 0.394, 0.364).
BUDGET_STEPS = {"smoke": 300, "short": 6000, "medium": 18000}
BUDGETS = (*BUDGET_STEPS, "paper")
