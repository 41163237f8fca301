"""Training: configuration, loop, checkpoints, distributed helpers."""
