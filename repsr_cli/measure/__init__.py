"""Measuring what the flow makes: the standard SR protocol for `eval` and validation (evaluate.py), its
metrics (metrics.py: PSNR and SSIM on Y, edge and halo measures; niqe.py), and speed (speed.py:
timed_together, the one timer of every comparison, and `repsr bench`)."""
