"""File formats, each with one home: training checkpoints, deploy weights, and the file helpers both use."""
