"""Training: the one Trainer every model shares, its checkpoints and its distributed helpers."""
