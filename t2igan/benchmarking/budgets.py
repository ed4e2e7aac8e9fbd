"""The named training budgets of a plan (no torch: the command-line parser lists them)."""

# Steps per run for the named budgets; `paper` trains for the preset's own `max_epoch`. `smoke` runs the pipe
# end to end; `short` is where DF-GAN's and RAT-GAN's `shapes` grids show recognisable shapes, not only the
# right colour, size and place (the figures: docs/measurements.md, "Training budgets on `shapes`").
BUDGET_STEPS = {"smoke": 300, "short": 18000}
BUDGETS = (*BUDGET_STEPS, "paper")
