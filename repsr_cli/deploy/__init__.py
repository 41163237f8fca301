"""The deployed models: the bundled table and user folder, loading one by name, the choice of model for an
input and the blends of --detail/--denoise (weights.py); making one from a training checkpoint, and exports
for other runtimes (convert.py)."""
