"""Training: the configuration (config.py), the loop (trainer.py), loss recipes and their objectives, generator
EMA, run logs, progress and plots. Checkpoints have their own home in formats/checkpoint.py, shared with
`convert`; torchrun's helpers are in distributed.py, shared with batch upscaling."""
